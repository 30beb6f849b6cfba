"""The app's settings, plus the benchmarks' variants of the signup and order endpoints
(bench/urls.py). `make bench` runs its web and worker processes with these; the app itself
never imports bench/."""

from config.settings import *  # noqa: F403 - the app's settings, whole

ROOT_URLCONF = "bench.urls"
