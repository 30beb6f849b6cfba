import pytest

from shop.models import Product
from tests.faults.helpers import FaultStack


@pytest.fixture
def stack(transactional_db, tmp_path):
    """A broker, ready to start the rest; everything is killed at the end of the test."""
    made = []

    def make(**overrides: str) -> FaultStack:
        built = FaultStack(tmp_path, overrides={k: str(v) for k, v in overrides.items()})
        built.start_broker()
        made.append(built)
        return built

    yield make
    for built in made:
        built.stop()


@pytest.fixture
def catalogue(transactional_db):
    return Product.objects.create(sku="MUG-001", name="Mug", price="14.00", stock=10_000)
