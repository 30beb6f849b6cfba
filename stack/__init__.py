"""The app's real processes on loopback: broker, web, workers, relay and mail sandbox, started
as subprocesses, for the fault-injection tests (tests/faults) and the benchmarks (bench/).

Both import this package and nothing of each other; the app never imports it.

- stack.processes: the Stack and its processes (needs Django's settings);
- stack.waiting: waiting for a condition or a port (imports nothing of the app, so that it can
  be used before the settings are read, as tests/embedded_services.py does).
"""
