from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from shop.models import Customer, Product
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


def customer_with_token() -> tuple[Customer, str]:
    customer = CustomerFactory()
    return customer, issue_token(customer.user)
