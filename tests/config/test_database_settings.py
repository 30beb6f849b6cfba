"""The database's connection options come from the environment (config/settings.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)
# The options psycopg would be given; nothing connects.
SHOW = """
import json, django
django.setup()
from django.db import connection
print(json.dumps({"prepare_threshold": connection.get_connection_params()["prepare_threshold"]}))
"""
POSTGRESQL = "postgres://shop@127.0.0.1:5432/shop"


def _connection_params(**environment: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_PREPARED_STATEMENTS"}
    env.update(environment, DJANGO_SETTINGS_MODULE="config.settings")
    shown = subprocess.run(
        [sys.executable, "-c", SHOW], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(shown.stdout.splitlines()[-1])


def test_on_postgresql_psycopg_may_prepare_statements():
    # Django's default is None: psycopg then prepares nothing, even when asked (jobs.ledger).
    assert _connection_params(DATABASE_URL=POSTGRESQL)["prepare_threshold"] is not None


def test_behind_a_pooler_that_does_not_keep_them_they_can_be_turned_off():
    shown = _connection_params(DATABASE_URL=POSTGRESQL, DATABASE_PREPARED_STATEMENTS="false")

    assert shown["prepare_threshold"] is None
