"""gunicorn's settings for the web process, wherever it runs gunicorn: the image's command
(Dockerfile, so docker-compose's `web`), and stack/processes.py for the fault tests and the
benchmarks (`gunicorn --config config/gunicorn.conf.py config.wsgi ...`).

gunicorn answers every request with `Server: gunicorn`, naming the server software to anyone
who asks, and has no setting to leave it out (benoitc/gunicorn#825). Its responses take their
first lines from `Response.default_headers`: the class below is gunicorn's without that line.
"""

from gunicorn.arbiter import Arbiter
from gunicorn.http import wsgi
from gunicorn.workers.base import Worker


class Response(wsgi.Response):
    def default_headers(self) -> list[str]:
        return [line for line in super().default_headers() if not line.startswith("Server:")]


# wsgi.create makes each request's Response from this module's name (sync and gthread workers).
wsgi.Response = Response


def child_exit(server: Arbiter, worker: Worker) -> None:
    """A web worker process ended: tell prometheus_client's multiprocess files (jobs.metrics).
    Imported here, in the arbiter, which loads no Django otherwise."""
    import os

    from prometheus_client import multiprocess

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
