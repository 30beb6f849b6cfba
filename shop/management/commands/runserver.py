"""`manage.py runserver`, the demo's web server (Procfile): Django's, serving the static files
as staticfiles' does, without a `Server` header.

Django's server answers every request with `Server: WSGIServer/0.2 CPython/3.11.7`, naming the
server software and the interpreter to anyone who asks, and has no option to leave it out.
"""

from typing import Any

from django.contrib.staticfiles.management.commands import runserver
from django.core.servers import basehttp


class WSGIRequestHandler(basehttp.WSGIRequestHandler):
    def send_header(self, keyword: str, value: str) -> None:
        # The answers the handler gives itself to a request it cannot read (400, 414, 431)
        # send `Server: version_string()` through here (http.server's send_response).
        if keyword.lower() != "server":
            super().send_header(keyword, value)


class WSGIServer(basehttp.WSGIServer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # basehttp.run passes Django's own handler; this server's requests go to the one above.
        self.RequestHandlerClass = WSGIRequestHandler


class Command(runserver.Command):
    server_cls = WSGIServer

    def inner_run(self, *args: Any, **options: Any) -> None:
        # The app's answers are written by basehttp.ServerHandler, one made for each request by
        # Django's handler, which adds `Server:` from this attribute unless it is empty (wsgiref's
        # BaseHandler.server_software). This process is the demo's web server and nothing else.
        basehttp.ServerHandler.server_software = ""
        super().inner_run(*args, **options)
