"""`python -m bench` sets the stack's environment (its own databases, broker and ports) before
Django reads its settings: a module that read them on import, before `Bench.running`, left the
bench on the wrong databases (CI's tiny bench: "The connection 'sandbox' doesn't exist")."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# What bench.__main__.main imports before it starts the stack, then whether that read the settings.
PROBE = """
import os
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
from bench import ledger_growth, report, scale_out, sections
from bench.harness import Bench
from bench.load import Load
from django.conf import settings
print("read" if settings.configured else "not read")
"""


def test_the_bench_modules_do_not_read_django_settings_when_imported():
    env = {"PATH": "/usr/bin:/bin", "HOME": str(ROOT)}
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True
    )

    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "not read"


def test_the_bench_refuses_to_start_on_settings_read_before_its_environment():
    # The mechanism itself, for whatever import comes next: here the test process has read
    # the settings (pytest-django), as a module imported too early would have.
    from django.conf import settings

    from bench.harness import Bench

    assert settings.configured
    with (
        pytest.raises(RuntimeError, match="settings were read before the bench set"),
        Bench.running(),
    ):
        pass
