"""Security settings that hold as the app is deployed (docs/deployment.md, "Security").

- Flower, which can see task arguments and revoke or retry tasks, refuses anyone without its
  basic-auth credentials.
- `manage.py check --deploy` is clean under production settings, and production refuses to
  start with the public development secret key.
- No pickle: Celery accepts, sends and stores JSON only (a pickle payload on the broker would be
  code execution on every worker), and the project's own code never imports pickle.

(API tokens stored as digests: tests/api/test_signup_api.py.)
"""

import ast
import base64
import os
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

from config.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]
CELERY = ROOT / ".venv" / "bin" / "celery"
PROJECT_PACKAGES = ("shop", "jobs", "sandbox", "config")


# --- Flower -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, credentials: str | None = None) -> int:
    """The status code of GET url, with basic auth `user:password` if given."""
    request = urllib.request.Request(url)  # noqa: S310 (a loopback http URL built here)
    if credentials is not None:
        token = base64.b64encode(credentials.encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture(scope="module")
def flower() -> Iterator[str]:
    """A real Flower (`celery -A config flower`) on a free loopback port, with basic auth.

    It inherits the environment, which tests.embedded_services points at the test broker;
    FLOWER_* variables (`make` exports FLOWER_PORT and FLOWER_BASIC_AUTH) are left out so that
    only the command line configures it.
    """
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("FLOWER_")}
    process = subprocess.Popen(
        [
            str(CELERY),
            "-A",
            "config",
            "flower",
            "--address=127.0.0.1",
            f"--port={port}",
            "--basic-auth=user:pass",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                output = process.communicate()[0].decode(errors="replace")
                pytest.fail(f"flower exited with {process.returncode}:\n{output}")
            try:
                _get(f"{url}/")
                break
            except OSError:  # not listening yet
                if time.monotonic() > deadline:
                    pytest.fail("flower did not answer within 30 s")
                time.sleep(0.2)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


def test_flower_refuses_requests_without_its_credentials(flower):
    assert _get(f"{flower}/") == 401
    assert _get(f"{flower}/", "user:wrong") == 401
    assert _get(f"{flower}/", "someone:pass") == 401
    assert _get(f"{flower}/", "user:pass") == 200


@pytest.mark.parametrize("path", ["/tasks", "/workers", "/api/tasks", "/api/workers"])
def test_flower_pages_and_api_refuse_requests_without_credentials(flower, path):
    assert _get(f"{flower}{path}") == 401


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
