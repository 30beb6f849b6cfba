"""A broker behind Redis Sentinel: the URL kombu takes is read the same way for every other
client of that Redis, and the settings give each the primary's name (the failover itself:
tests/faults/test_broker_failover.py)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from django.conf import settings

from jobs import sentinel

URL = "sentinel://:s3cr%40t@10.0.0.1:26379/2;sentinel://10.0.0.2:26380;sentinel://10.0.0.3"


def test_a_sentinel_url_names_every_sentinel_and_the_primarys_credentials_and_database():
    parsed = sentinel.parse(URL)
    assert parsed.sentinels == [("10.0.0.1", 26379), ("10.0.0.2", 26380), ("10.0.0.3", 26379)]
    assert (parsed.username, parsed.password, parsed.db) == (None, "s3cr@t", 2)
    assert sentinel.is_sentinel_url(URL)
    assert not sentinel.is_sentinel_url("redis://10.0.0.1:6379/0")
    with pytest.raises(ValueError, match="sentinel"):
        sentinel.parse("sentinel://10.0.0.1:26379;redis://10.0.0.2:6379")


def test_the_rate_limits_get_the_same_primary_in_the_limits_librarys_form():
    assert (
        sentinel.limits_url(URL, master_name="shop-broker")
        == "redis+sentinel://:s3cr%40t@10.0.0.1:26379,10.0.0.2:26380,10.0.0.3:26379/shop-broker"
    )


def _settings_with(**environment: str) -> subprocess.CompletedProcess[str]:
    probe = textwrap.dedent(
        """
        import json
        from django.conf import settings
        print(json.dumps({
            "transport": settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            "rate_limits": [settings.RATE_LIMITS_STORAGE_URL, settings.RATE_LIMITS_STORAGE_OPTIONS],
            "cache": settings.CACHES["default"],
        }))
        """
    )
    return subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **environment},
        check=False,
    )


def test_every_client_of_the_broker_is_given_the_primarys_name():
    answer = _settings_with(
        CELERY_BROKER_URL="sentinel://127.0.0.1:26379;sentinel://127.0.0.1:26380",
        BROKER_SENTINEL_MASTER="shop-broker",
        BROKER_SENTINEL_PASSWORD="sentinels-own",
    )
    assert answer.returncode == 0, answer.stderr
    seen = json.loads(answer.stdout)
    assert seen["transport"]["master_name"] == "shop-broker"
    assert seen["transport"]["sentinel_kwargs"]["password"] == "sentinels-own"
    url, options = seen["rate_limits"]
    assert url == "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/shop-broker"
    assert options["sentinel_kwargs"]["password"] == "sentinels-own"
    assert options["use_replicas"] is False
    assert seen["cache"]["LOCATION"] == ["sentinel://127.0.0.1:26379;sentinel://127.0.0.1:26380"]
    assert seen["cache"]["OPTIONS"]["pool_class"] == "jobs.sentinel.SentinelPool"
    assert seen["cache"]["OPTIONS"]["master_name"] == "shop-broker"


def test_a_sentinel_url_without_the_primarys_name_is_refused_at_start():
    answer = _settings_with(CELERY_BROKER_URL="sentinel://127.0.0.1:26379")
    assert answer.returncode != 0
    assert "BROKER_SENTINEL_MASTER" in answer.stderr
