"""Password hashing cannot take the web process's memory (docs/deployment.md, "Passwords").

Each Argon2 hash holds its whole memory cost while it runs. At Django's default (100 MiB, 8
lanes), 16 wrong logins at once took a web process from 233 MB to 1,083 MB. New passwords are
hashed at OWASP's recommended minimum (19 MiB, 2 passes, 1 lane), a process hashes two at a
time, and a hash made at Django's default still verifies and is replaced at the next login.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import Argon2PasswordHasher, identify_hasher

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
OWASP_MINIMUM = {"memory_cost": 19 * 1024, "time_cost": 2, "parallelism": 1}
MIB = 1024 * 1024


def argon2_parameters(encoded: str) -> dict[str, int]:
    decoded = identify_hasher(encoded).decode(encoded)
    return {name: decoded[name] for name in OWASP_MINIMUM}


def test_a_new_password_is_hashed_at_the_owasp_minimum(api_client):
    response = api_client.post(
        "/api/signup",
        {"email": "ada@example.com", "name": "Ada", "password": "analytical-engine-1843"},
        format="json",
    )

    assert response.status_code == 201
    user = get_user_model().objects.get(email="ada@example.com")
    assert user.password.startswith("argon2$argon2id$")
    assert argon2_parameters(user.password) == OWASP_MINIMUM
    assert user.check_password("analytical-engine-1843")


def test_a_hash_at_djangos_default_still_logs_in_and_is_rehashed_at_the_minimum(client):
    stock = Argon2PasswordHasher()
    user = UserFactory(email="grace@example.com", username="grace@example.com")
    user.password = stock.encode("compile-the-cobol-1959", stock.salt())
    user.save(update_fields=["password"])
    assert argon2_parameters(user.password)["memory_cost"] == 100 * 1024

    response = client.post(
        "/login", {"username": "grace@example.com", "password": "compile-the-cobol-1959"}
    )

    assert response.status_code == 302
    user.refresh_from_db()
    assert argon2_parameters(user.password) == OWASP_MINIMUM
    assert user.check_password("compile-the-cobol-1959")


# Run in a process of its own: its peak resident memory is the measurement.
SIXTEEN_HASHES_AT_ONCE = """
import resource, threading
import django
django.setup()
from django.contrib.auth.hashers import make_password
make_password("warm-up")  # imports argon2; the peak so far is one hash
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
threads = [threading.Thread(target=make_password, args=("wrong-password-%d" % n,))
           for n in range(16)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def test_sixteen_hashes_at_once_raise_the_peak_memory_by_about_one_hash():
    """Two hashes run at a time; the first already set the peak (one hash), the second adds
    one more. Without the bound, 16 threads at 19 MiB add 285 MiB; at 100 MiB, 1.5 GiB."""
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    environment["PASSWORD_HASHING_THREADS"] = "2"
    result = subprocess.run(
        [sys.executable, "-c", SIXTEEN_HASHES_AT_ONCE],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    added_bytes = int(result.stdout.split()[-1]) * 1024  # ru_maxrss is in KiB on Linux
    assert added_bytes < 2 * 19 * MIB, f"{added_bytes / MIB:.0f} MiB added"
