"""SANDBOX_DATABASE_URL: the sandbox's records go to a database of their own (as `make bench`
runs it), the shop's stay in the default one, and each is migrated where it belongs."""

import json
import os
import subprocess
import sys
from pathlib import Path

from django.apps import apps

from sandbox.routers import SandboxRouter
from shop.models import Order

ROOT = Path(__file__).resolve().parents[2]


def test_sandbox_models_read_and_write_their_own_database():
    router = SandboxRouter()
    event = apps.get_model("sandbox", "AnalyticsEvent")
    assert router.db_for_read(event) == "sandbox"
    assert router.db_for_write(event) == "sandbox"
    # The shop's models are left to the default database.
    assert router.db_for_read(Order) is None
    assert router.db_for_write(Order) is None


def test_each_app_is_migrated_in_its_own_database_only():
    router = SandboxRouter()
    assert router.allow_migrate("sandbox", "sandbox")
    assert not router.allow_migrate("default", "sandbox")
    assert router.allow_migrate("default", "shop")
    assert not router.allow_migrate("sandbox", "shop")
    assert not router.allow_migrate("sandbox", "contenttypes")


SANDBOX_CALLS = """
import json

import django

django.setup()
from django.core.management import call_command
from django.db import connections
from django.db.backends.signals import connection_created
from django.test import Client

from sandbox.models import Charge, CrmRecord

call_command("migrate", verbosity=0)
call_command("migrate", database="sandbox", verbosity=0)
connections.close_all()
opened = []
connection_created.connect(lambda sender, connection, **kw: opened.append(connection.alias))

client = Client(HTTP_HOST="localhost")
charge = {"amount": "12.00", "currency": "EUR", "reference": "order-1"}
statuses = [
    client.post(
        "/sandbox/payments/charges", charge, content_type="application/json", headers=key
    ).status_code
    for key in ({"Idempotency-Key": "order-1"}, {"Idempotency-Key": "order-1"})
]
client.post("/sandbox/switches/crm", {"fail_next": 1}, content_type="application/json")
statuses += [
    client.put("/sandbox/crm/deals/7", {"total": "12.00"}, content_type="application/json")
    .status_code
    for _ in range(2)
]
print(json.dumps({
    "statuses": statuses,
    "opened": sorted(set(opened)),
    "charges": Charge.objects.count(),
    "deals": CrmRecord.objects.count(),
}))
"""


def test_with_a_database_of_their_own_the_sandboxes_never_touch_the_shops(tmp_path):
    """As `make bench` runs them: a charge (and its replay), a CRM failure on demand and an
    upsert are written to the sandbox database, and the shop's database is never opened,
    not even for a transaction (one on the wrong database would guard nothing)."""
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'shop.sqlite3'}",
        "SANDBOX_DATABASE_URL": f"sqlite:///{tmp_path / 'sandbox.sqlite3'}",
        "SANDBOX_ENABLED": "true",
        "DJANGO_DEBUG": "true",
    }
    run = subprocess.run(
        [sys.executable, "-c", SANDBOX_CALLS],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    # Charged once, replayed; the CRM failed once on demand, then took the deal.
    assert result["statuses"] == [201, 200, 503, 200]
    assert result["charges"] == 1
    assert result["deals"] == 1
    assert result["opened"] == ["sandbox"]
