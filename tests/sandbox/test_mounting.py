import importlib

import pytest
from django.urls import clear_url_caches

import config.urls


@pytest.fixture
def reload_urls(settings):
    enabled = settings.SANDBOX_ENABLED

    def reload() -> None:
        importlib.reload(config.urls)
        clear_url_caches()

    yield reload
    # Back to the session's settings (this teardown runs before the settings fixture's own).
    settings.SANDBOX_ENABLED = enabled
    reload()


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


@pytest.mark.django_db
def test_the_pages_render_without_the_sandbox_and_do_not_link_to_it(client, settings, reload_urls):
    settings.SANDBOX_ENABLED = False
    reload_urls()

    catalogue = client.get("/")
    not_found = client.get("/products/NOPE-404")

    assert catalogue.status_code == 200
    assert not_found.status_code == 404
    assert b"We can't find that page" in not_found.content
    assert b"/sandbox/" not in catalogue.content
