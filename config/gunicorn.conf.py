"""gunicorn's settings for the web process, wherever it runs gunicorn: the image's command
(Dockerfile, so docker-compose's `web`), and stack/processes.py for the fault tests and the
benchmarks (`gunicorn --config config/gunicorn.conf.py config.wsgi ...`).

gunicorn answers every request with `Server: gunicorn`, naming the server software to anyone
who asks, and has no setting to leave it out (benoitc/gunicorn#825). Its responses take their
first lines from `Response.default_headers`: the class below is gunicorn's without that line.
"""

from gunicorn.http import wsgi


class Response(wsgi.Response):
    def default_headers(self) -> list[str]:
        return [line for line in super().default_headers() if not line.startswith("Server:")]


# wsgi.create makes each request's Response from this module's name (sync and gthread workers).
wsgi.Response = Response
