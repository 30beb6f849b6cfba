"""Benchmarks of the app against the synchronous way, bare Celery, the common way and the
raw broker, measured side by side in one run: `make bench` (bench/__main__.py)."""
