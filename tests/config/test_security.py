"""Security settings that hold as the app is deployed (docs/deployment.md, "Security").

- Flower, which can see task arguments and revoke or retry tasks, refuses anyone without its
  basic-auth credentials, on every route of its own (flowerconfig.py), and does not start with
  the demo's credentials, or none, outside debug.
- `manage.py check --deploy` is clean under production settings, and production refuses to
  start with the public development secret key.
- No pickle: Celery accepts, sends and stores JSON only (a pickle payload on the broker would be
  code execution on every worker), and the project's own code never imports pickle.

- Every page is served with a Content-Security-Policy that allows scripts, styles and
  requests from the site itself only, and no page has an inline script or style it would block
  (tests/browser/test_csp.py opens them in Chromium); no answer names the server software or
  the interpreter in a `Server` header, under gunicorn or under the demo's runserver.

(API tokens stored as digests: tests/api/test_signup_api.py.)
"""

import ast
import base64
import html.parser
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import tornado.web
import yaml
from flower.urls import handlers as flower_routes
from flower.views import BaseHandler as FlowerHandler

from config.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]
CELERY = ROOT / ".venv" / "bin" / "celery"
PROJECT_PACKAGES = ("shop", "jobs", "sandbox", "config")


# --- Flower -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _status(url: str, credentials: str | None = None, method: str = "GET") -> int:
    """The status code of a request to url, with basic auth `user:password` if given."""
    data = b"" if method != "GET" else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (loopback)
    if credentials is not None:
        token = base64.b64encode(credentials.encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _start_flower(port: int, *args: str, env: dict[str, str]) -> subprocess.Popen:
    """`celery -A config flower` from the project's root, as the Procfile and compose start it,
    on a loopback port; FLOWER_* variables (`make` exports FLOWER_PORT and FLOWER_BASIC_AUTH)
    are left out so that only the command line configures it."""
    env = {key: value for key, value in env.items() if not key.startswith("FLOWER_")}
    return subprocess.Popen(
        [str(CELERY), "-A", "config", "flower", "--address=127.0.0.1", f"--port={port}", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _listening(process: subprocess.Popen, url: str) -> bool:
    """Wait until Flower answers at url (True) or exits (False)."""
    deadline = time.monotonic() + 30
    while process.poll() is None:
        try:
            _status(f"{url}/")
            return True
        except OSError:  # not listening yet
            if time.monotonic() > deadline:
                pytest.fail("flower neither answered nor exited within 30 s")
            time.sleep(0.2)
    return False


def _stop(process: subprocess.Popen) -> str:
    """Stop Flower if it runs; what it printed."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    return process.communicate(timeout=10)[0].decode(errors="replace")


@pytest.fixture(scope="module")
def flower() -> Iterator[str]:
    """A real Flower on a free loopback port, with basic auth `user:pass`.

    It inherits the environment, which tests.embedded_services points at the test broker.
    """
    port = _free_port()
    process = _start_flower(port, "--basic-auth=user:pass", env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    try:
        if not _listening(process, url):
            pytest.fail(f"flower exited with {process.returncode}:\n{_stop(process)}")
        yield url
    finally:
        _stop(process)


def test_flower_refuses_requests_without_its_credentials(flower):
    assert _status(f"{flower}/") == 401
    assert _status(f"{flower}/", "user:wrong") == 401
    assert _status(f"{flower}/", "someone:pass") == 401
    assert _status(f"{flower}/", "user:pass") == 200


def test_flowers_broker_page_names_the_redis_broker(flower):
    """Flower picks its broker client by the scheme of the app's broker URL (the app's own
    transport keeps it `redis://`: jobs.redis_transport)."""
    request = urllib.request.Request(f"{flower}/broker")  # noqa: S310 (loopback)
    request.add_header("Authorization", "Basic " + base64.b64encode(b"user:pass").decode())
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        page = response.read().decode()
    assert "redis://" in page


@pytest.mark.parametrize(
    "path", ["/tasks", "/workers", "/api/tasks", "/api/workers", "/metrics", "/healthcheck"]
)
def test_flower_pages_and_api_refuse_requests_without_credentials(flower, path):
    assert _status(f"{flower}{path}") == 401
    assert _status(f"{flower}{path}", "user:wrong") == 401


@pytest.mark.parametrize("path", ["/metrics", "/healthcheck"])
def test_flower_metrics_and_healthcheck_answer_with_credentials(flower, path):
    assert _status(f"{flower}{path}", "user:pass") == 200


# Routes that answer before sign-in: the sign-in flow, and Flower's own static files.
FLOWER_OPEN_ROUTES = {"/login/?", "/logout", "/static/(.*)"}


def _flower_route_table() -> list[tuple[str, type]]:
    """(pattern, handler class) of each route Flower serves."""
    routes = []
    for route in flower_routes:
        if isinstance(route, tornado.web.URLSpec):
            routes.append((route.regex.pattern.removesuffix("$"), route.handler_class))
        else:
            routes.append((route[0], route[1]))
    return routes


def _example_path(pattern: str) -> str:
    """A path the route's pattern matches: `/task/(.+)` -> `/task/x`; the catch-all `.*`
    -> a page that does not exist."""
    if not pattern.startswith("/"):
        return "/no-such-page"
    return re.sub(r"\([^)]*\)", "x", pattern)


def _implemented_methods(handler: type) -> list[str]:
    return [
        verb.upper()
        for verb in ("get", "post", "put", "patch", "delete")
        if getattr(handler, verb) is not getattr(tornado.web.RequestHandler, verb)
    ]


def test_every_flower_route_refuses_requests_without_credentials(flower):
    """The whole route table of the installed Flower, so that a route a later version adds
    without its own check is caught here."""
    routes = _flower_route_table()
    assert len(routes) > 30  # the table was read
    guarded = [
        (pattern, handler) for pattern, handler in routes if pattern not in FLOWER_OPEN_ROUTES
    ]
    assert {pattern for pattern, _ in routes} - {pattern for pattern, _ in guarded} == (
        FLOWER_OPEN_ROUTES
    )

    answers = {
        f"{method} {_example_path(pattern)}": _status(
            f"{flower}{_example_path(pattern)}", method=method
        )
        for pattern, handler in guarded
        if issubclass(handler, FlowerHandler)
        for method in _implemented_methods(handler)
    }
    assert len(answers) > 30
    assert {request: status for request, status in answers.items() if status != 401} == {}


def test_compose_publishes_flower_on_the_hosts_loopback_only():
    flower_service = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["flower"]

    assert flower_service["ports"] == ["127.0.0.1:${FLOWER_PORT:-5555}:5555"]
    assert "--conf=flowerconfig.py" in flower_service["command"]


def _production_flower_starts(*args: str) -> tuple[bool, str]:
    """Start Flower as production would (DJANGO_DEBUG=false); whether it listened, and what
    it printed."""
    port = _free_port()
    env = _production_env(DJANGO_SECRET_KEY=secrets.token_urlsafe(64)[:64])
    process = _start_flower(port, *args, env=env)
    try:
        listening = _listening(process, f"http://127.0.0.1:{port}")
    finally:
        output = _stop(process)
    return listening, output


@pytest.mark.parametrize(
    "credentials",
    [["--basic-auth=admin:flower-demo"], ["--basic-auth=ops:own-secret,admin:flower-demo"], []],
    ids=["demo-credentials", "demo-credentials-among-others", "no-credentials"],
)
def test_flower_refuses_to_start_outside_debug_with_the_demo_credentials_or_none(credentials):
    listening, output = _production_flower_starts(*credentials)

    assert not listening, "Flower started in production with " + (credentials or ["no auth"])[0]
    assert "FLOWER_BASIC_AUTH" in output, output


def test_flower_starts_outside_debug_with_credentials_of_its_own():
    listening, output = _production_flower_starts("--basic-auth=ops:a-secret-of-its-own")

    assert listening, output


# --- Production settings ------------------------------------------------------------------

PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "DJANGO_DEBUG": "false",
    "DJANGO_ALLOWED_HOSTS": "shop.example.com",
}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _production_env(**overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO_")}
    return {**env, **PRODUCTION, **overrides}


def test_check_deploy_is_clean_under_production_settings():
    secret_key = secrets.token_urlsafe(64)[:64]
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env=_production_env(DJANGO_SECRET_KEY=secret_key),
    )

    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "System check identified no issues (0 silenced)." in report, report
    assert "WARNINGS:" not in report, report


def test_production_refuses_to_start_without_a_secret_key():
    result = _manage("check", env=_production_env())

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


# --- No pickle ----------------------------------------------------------------------------


def test_celery_speaks_json_only():
    conf = celery_app.conf

    assert list(conf.accept_content) == ["json"]
    assert list(conf.result_accept_content or conf.accept_content) == ["json"]
    assert conf.task_serializer == "json"
    assert conf.result_serializer == "json"
    # Events (Flower, `celery events`) are decoded with the same content list.
    assert conf.event_serializer == "json"


def _pickle_imports(source: str) -> list[str]:
    """Names with "pickle" in any import of `source` (pickle, _pickle, cloudpickle, dill's
    kin...), read from its syntax tree: the comments that explain why there is none don't count.
    """
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names += [node.module or "", *(alias.name for alias in node.names)]
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func) and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.append(first.value)
    return [name for name in names if "pickle" in name.lower()]


def _is_dynamic_import(func: ast.expr) -> bool:
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
    return name in {"__import__", "import_module"}


def test_no_project_module_imports_pickle():
    sources = [path for package in PROJECT_PACKAGES for path in (ROOT / package).rglob("*.py")]
    assert len(sources) > 20  # the walk found the code

    offenders = {
        str(path.relative_to(ROOT)): names
        for path in sources
        if (names := _pickle_imports(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}


def test_the_pickle_scan_would_see_one():
    assert _pickle_imports("import pickle") == ["pickle"]
    assert _pickle_imports("from _pickle import loads") == ["_pickle"]
    assert _pickle_imports("import cloudpickle as cp") == ["cloudpickle"]
    assert _pickle_imports("from kombu.serialization import pickle_loads") == ["pickle_loads"]
    assert _pickle_imports("__import__('pickle')") == ["pickle"]
    assert _pickle_imports("importlib.import_module('pickle')") == ["pickle"]
    assert _pickle_imports("# no pickle here\nx = 'pickle'") == []
    assert _pickle_imports("import json") == []


# --- Headers: Content-Security-Policy, Server -------------------------------------------------

PAGES = [
    "/",
    "/orders/{order}",
    "/orders/{order}/timeline",
    "/ops/",
    "/ops/stats",
    "/sandbox/",
    "/sandbox/mailbox/",
    "/sandbox/sms/",
    "/admin/",
    "/admin/shop/order/",
    "/admin/shop/order/{order}/change/",
    "/admin/webhooks/webhookendpoint/add/",
    "/admin/jobs/job/",
    "/api/openapi.json",
    "/api/products",
]
POLICY = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)


class InlineCode(html.parser.HTMLParser):
    """What a page carries that a policy without 'unsafe-inline' would block: script elements
    without `src`, style elements, `on...` handler attributes, `style` attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if (tag == "script" and "src" not in dict(attrs)) or tag == "style":
            self.found.append(f"<{tag}>")
        self.found += [f"<{tag} {name}>" for name, _ in attrs if name.startswith("on")]
        self.found += [f"<{tag} style>" for name, _ in attrs if name == "style"]


@pytest.fixture
def pages_client(client):
    from django.contrib.auth import get_user_model

    from tests.factories import OrderFactory

    order = OrderFactory()
    # Staff who is also the order's customer: one session sees the shop, ops and the admin.
    user = order.customer.user
    user.is_staff = user.is_superuser = True
    user.save()
    client.force_login(user)
    client.order = order
    assert get_user_model().objects.filter(is_superuser=True).count() == 1
    return client


# What a visitor who is not signed in sees.
ANONYMOUS_PAGES = ["/signup", "/login", "/admin/login/"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "signed_in"),
    [(path, True) for path in PAGES] + [(path, False) for path in ANONYMOUS_PAGES],
)
def test_every_page_has_a_content_security_policy_and_nothing_inline_it_would_block(
    pages_client, path, signed_in
):
    if not signed_in:
        pages_client.logout()
    response = pages_client.get(path.format(order=pages_client.order.pk))

    assert response.status_code == 200
    policy = [part.strip() for part in response.headers["Content-Security-Policy"].split(";")]
    assert set(POLICY) <= set(policy)
    assert not [part for part in policy if "unsafe" in part]
    if response["Content-Type"].startswith("text/html"):
        scan = InlineCode()
        scan.feed(response.content.decode())
        assert scan.found == []


def test_the_inline_code_scan_would_see_some():
    scan = InlineCode()
    scan.feed(
        '<script>x()</script><script src="/a.js"></script><style>p{}</style>'
        '<p style="color: red" onclick="x()">'
    )
    assert scan.found == ["<script>", "<style>", "<p onclick>", "<p style>"]


def _raw_answer_head(port: int, request: bytes) -> str:
    """The status line and headers the server answers `request` with, sent as is."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    return received.split(b"\r\n\r\n")[0].decode("latin-1")


def _server_headers(head: str) -> list[str]:
    return [line for line in head.split("\r\n")[1:] if line.lower().startswith("server:")]


@pytest.fixture(params=["runserver", "gunicorn"])
def web_server(request, transactional_db, tmp_path) -> Iterator[int]:
    """The web server the demo runs (`manage.py runserver`, as the Procfile starts it) or the
    one deployments run (gunicorn, as stack/processes.py starts it for the fault tests and the
    benchmarks), on a free loopback port; its port."""
    from stack.processes import BIN, Stack
    from stack.waiting import port_open, wait_until

    stack = Stack(tmp_path)
    try:
        if request.param == "gunicorn":
            stack.start_web(workers=1, threads=2)
        else:
            address = f"127.0.0.1:{stack.web_port}"
            stack.spawn("web", str(BIN / "python"), "manage.py", "runserver", address, "--noreload")
            wait_until(lambda: port_open(stack.web_port), timeout=60, message="runserver to listen")
        yield stack.web_port
    finally:
        stack.stop()


def test_no_answer_names_the_server_software_or_the_interpreter(web_server):
    page = _raw_answer_head(web_server, b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    # A request the HTTP server refuses itself, before the app sees it: a header line longer
    # than either server takes.
    too_long = b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: " + b"a" * 70_000
    malformed = _raw_answer_head(web_server, too_long + b"\r\n\r\n")

    assert page.startswith("HTTP/1.1 200"), page
    assert int(malformed.split(" ")[1]) >= 400, malformed
    assert _server_headers(page) == []
    assert _server_headers(malformed) == []


def test_the_schema_answers_a_burst_of_first_requests_without_a_500(web_server):
    """A generated client's first build, a CI job, a docs page: many may fetch the schema at
    once from a server that has just started. drf-spectacular loads its extensions the first
    time it builds a schema, and threads that did so at once failed (`'NoneType' object has
    no attribute 'startswith'`): 77 of 200 answers were 500s under runserver, 2 under
    gunicorn."""
    import threading

    clients = 100
    barrier = threading.Barrier(clients)
    request = b"GET /api/openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    results: list[str] = []

    def client() -> None:
        barrier.wait()
        try:
            with socket.create_connection(("127.0.0.1", web_server), timeout=120) as sock:
                sock.sendall(request)
                results.append(sock.recv(12).decode("latin-1"))
        except OSError as exc:
            results.append(repr(exc))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    failed = [result for result in results if not result.startswith("HTTP/1.1 200")]
    assert failed == [], f"{len(failed)} of {clients}: {failed[:3]}"
