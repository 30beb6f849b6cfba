"""The password hasher: Argon2 that cannot take the web process's memory (docs/deployment.md).

An Argon2 hash holds its whole memory cost while it runs. At Django's default (100 MiB, 8
lanes), 16 wrong logins at once took a web process from 233 MB to 1,083 MB.
"""

import os
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher


def _new_hashing_threads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(settings.PASSWORD_HASHING_THREADS, "password-hashing")


# A few threads of their own, not a semaphore around the request threads' hashes: the C
# allocator keeps the memory of a hash in the arena of the thread that ran it, so 16 request
# threads taking turns still came to 16 hashes' worth (304 MiB); 2 threads keep 2 (38 MiB).
_hashing_threads = _new_hashing_threads()


def _replace_hashing_threads_in_a_forked_child() -> None:
    # A forked child has none of the parent's threads, but its executor would believe it has.
    global _hashing_threads
    _hashing_threads = _new_hashing_threads()


os.register_at_fork(after_in_child=_replace_hashing_threads_in_a_forked_child)


class BoundedArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id at OWASP's recommended minimum (Password Storage Cheat Sheet: m=19 MiB, t=2,
    p=1), on `PASSWORD_HASHING_THREADS` threads per process.

    Same algorithm name as Django's hasher: hashes made with Django's default still verify
    (their parameters are in the hash), and `must_update` rehashes them at the next login.
    """

    memory_cost = 19 * 1024  # KiB
    time_cost = 2
    parallelism = 1

    def encode(self, password: str, salt: str) -> str:
        return _hashing_threads.submit(super().encode, password, salt).result()

    def verify(self, password: str, encoded: str) -> bool:
        return _hashing_threads.submit(super().verify, password, encoded).result()
