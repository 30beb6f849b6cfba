import importlib

import pytest
from django.urls import clear_url_caches

import config.urls


@pytest.fixture
def reload_urls():
    def reload() -> None:
        importlib.reload(config.urls)
        clear_url_caches()

    yield reload
    reload()  # back to the session's settings


@pytest.mark.django_db
def test_the_sandbox_is_not_served_unless_enabled(client, settings, reload_urls):
    settings.SANDBOX_ENABLED = False
    reload_urls()

    assert client.get("/sandbox/").status_code == 404
    assert client.get("/sandbox/mailbox/").status_code == 404
    assert (
        client.post("/sandbox/switches/crm", {}, content_type="application/json").status_code == 404
    )

    settings.SANDBOX_ENABLED = True
    reload_urls()
    assert client.get("/sandbox/").status_code == 200
