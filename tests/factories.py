from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from jobs.models import DeadLetter, Job
from shop.models import Customer, Order, OrderLine, Product
from shop.tokens import issue_token


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    username = factory.SelfAttribute("email")
    password = factory.django.Password("a-long-enough-password")


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    user = factory.SubFactory(UserFactory)
    name = factory.Faker("name")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product
        django_get_or_create = ("sku",)

    sku = factory.Sequence(lambda n: f"SKU-{n:03d}")
    name = factory.Faker("word")
    price = Decimal("10.00")
    currency = "EUR"
    stock = 100


class OrderLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderLine

    product = factory.SubFactory(ProductFactory)
    quantity = 1
    unit_price = factory.SelfAttribute("product.price")


class OrderFactory(factory.django.DjangoModelFactory):
    """An order of one product at 10.00, as the order service writes it, without its jobs."""

    class Meta:
        model = Order
        skip_postgeneration_save = True  # the line is written by its own factory

    customer = factory.SubFactory(CustomerFactory)
    total = Decimal("10.00")
    line = factory.RelatedFactory(OrderLineFactory, factory_related_name="order")


class JobFactory(factory.django.DjangoModelFactory):
    """A ledger row, as jobs.dispatch records it (not published: nothing runs it)."""

    class Meta:
        model = Job

    name = "jobs.track_analytics_event"
    queue = "bulk"
    kwargs = factory.Sequence(
        lambda n: {"event_id": f"factory:{n}", "name": "factory", "properties": {}}
    )
    concerning = None


class DeadJobFactory(JobFactory):
    state = Job.State.DEAD
    attempts = 6
    last_error = "TransientError: POST http://127.0.0.1/sandbox/analytics/events answered 503"
    first_failed_at = factory.LazyFunction(timezone.now)
    finished_at = factory.LazyFunction(timezone.now)


class DeadLetterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeadLetter

    job = factory.SubFactory(DeadJobFactory)
    error = factory.SelfAttribute("job.last_error")
    attempts = factory.SelfAttribute("job.attempts")
    first_failed_at = factory.SelfAttribute("job.first_failed_at")
    failed_at = factory.SelfAttribute("job.finished_at")


def customer_with_token() -> tuple[Customer, str]:
    customer: Customer = CustomerFactory.create()
    return customer, issue_token(customer.user)


def many_orders(count: int, *, sku: str = "EXP-001") -> list[int]:
    """`count` orders of one customer, each of two units of one product, placed now, written
    in bulk (an export's tests want thousands); their ids, ascending."""
    email = f"buyer-of-{sku.lower()}@example.com"
    user = get_user_model().objects.create_user(username=email, email=email)
    customer = Customer.objects.create(user=user, name=f"Buyer of {sku}")
    product = Product.objects.create(sku=sku, name=sku, price=Decimal("10.00"), stock=0)
    orders = Order.objects.bulk_create(
        Order(customer=customer, total=Decimal("20.00"), status=Order.Status.PAID)
        for _ in range(count)
    )
    OrderLine.objects.bulk_create(
        OrderLine(order=order, product=product, quantity=2, unit_price=Decimal("10.00"))
        for order in orders
    )
    return sorted(order.pk for order in orders)
