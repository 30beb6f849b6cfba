"""HTTP clients of the shop's third parties, a module each.

Each call goes through jobs.http, which turns the answer into the retry policy's two kinds of
error, and carries a key the receiver deduplicates on.
"""
