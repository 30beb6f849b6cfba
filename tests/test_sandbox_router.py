"""SANDBOX_DATABASE_URL: the sandbox's records go to a database of their own (as `make bench`
runs it), the shop's stay in the default one, and each is migrated where it belongs."""

from django.apps import apps

from sandbox.routers import SandboxRouter
from shop.models import Order


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
