"""Flower behind its credentials on every route, and never with the demo's outside debug.

Flower checks credentials with `tornado.web.authenticated` on each handler's methods, one by
one, and leaves some out: in 2.2, /metrics (task names and counts per worker) and /healthcheck
answer anyone. `require_credentials_on_every_route` puts the same check on every handler of
Flower's route table, except the sign-in flow (which must answer before sign-in) and the
static files; a route a later Flower adds is covered too, and
tests/config/test_security.py walks the installed Flower's table to prove it.

Flower runs this from its configuration file, flowerconfig.py at the project's root (Flower's
`--conf`, whose default is that name in the directory it starts in).
"""

from django.conf import settings
from flower.options import default_options
from flower.urls import handlers as flower_routes
from flower.views import BaseHandler
from flower.views import auth as sign_in
from tornado.web import RequestHandler, URLSpec, authenticated

# The demo's pair (Makefile, docker-compose.yml): public, so for debug only.
DEMO_CREDENTIALS = "admin:flower-demo"
HTTP_VERBS = ("get", "head", "post", "put", "patch", "delete")


def configure() -> None:
    """What flowerconfig.py runs, before Flower serves anything."""
    refuse_unsafe_credentials(
        basic_auth=default_options.basic_auth, oauth=default_options.auth, debug=settings.DEBUG
    )
    require_credentials_on_every_route()


def refuse_unsafe_credentials(*, basic_auth: list[str] | None, oauth: str, debug: bool) -> None:
    """Outside debug, stop Flower from starting with the demo's credentials, or with none."""
    if debug:
        return
    pairs = [pair for pair in basic_auth or [] if pair]
    if DEMO_CREDENTIALS in pairs:
        raise SystemExit(
            f"Flower refuses to start with the demo's credentials ({DEMO_CREDENTIALS}) when "
            "DJANGO_DEBUG is false: set FLOWER_BASIC_AUTH to a user:password of your own."
        )
    if not pairs and not oauth:
        raise SystemExit(
            "Flower refuses to start without credentials when DJANGO_DEBUG is false: set "
            "FLOWER_BASIC_AUTH to a user:password of your own."
        )


def require_credentials_on_every_route() -> None:
    for route in flower_routes:
        handler = route.handler_class if isinstance(route, URLSpec) else route[1]
        if not issubclass(handler, BaseHandler) or handler.__module__ == sign_in.__name__:
            continue  # static files; the sign-in flow
        for verb in HTTP_VERBS:
            method = getattr(handler, verb)
            if method is getattr(RequestHandler, verb) or hasattr(method, "credentials_required"):
                continue  # not served (405), or already checked by a parent class
            checked = authenticated(method)
            checked.credentials_required = True  # type: ignore[attr-defined]
            setattr(handler, verb, checked)
