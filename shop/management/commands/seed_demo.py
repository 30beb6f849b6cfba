import random
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from sandbox.models import WebhookInbox
from shop.models import Customer, Order, OrderLine, Product
from webhooks.models import WebhookEndpoint, new_secret

# sku, name, price, stock, description. Each has its picture at shop/static/shop/products/
# <sku>.svg (bin/draw-product-images). A failed payment is the declined test card's job
# (docs/api.md), not a product's: every product here can be bought.
CATALOGUE = [
    (
        "MUG-001",
        "Enamel camping mug",
        "14.00",
        120,
        "Steel with a glassy enamel coat: it takes a campfire, a dishwasher and a fall onto "
        "rocks. Holds 350 ml.",
    ),
    (
        "TEE-002",
        "Organic cotton tee",
        "29.00",
        80,
        "Heavyweight organic cotton, cut straight and a little long. Washes soft, not thin.",
    ),
    (
        "CAP-003",
        "Six-panel cap",
        "22.50",
        60,
        "Washed cotton twill with a curved brim and a brass buckle to size it.",
    ),
    (
        "BAG-004",
        "Waxed canvas tote",
        "48.00",
        40,
        "Waxed cotton canvas and leather handles; rain runs off it, groceries stay in.",
    ),
    (
        "PEN-005",
        "Brass pocket pen",
        "35.00",
        75,
        "Solid brass that darkens with use, a screw cap and a standard refill.",
    ),
    (
        "NTB-006",
        "Dot-grid notebook",
        "12.90",
        200,
        "A5, 192 numbered pages of 100 g paper that fountain pens do not bleed through.",
    ),
    (
        "SOC-007",
        "Merino hiking socks",
        "18.00",
        150,
        "Merino with a cushioned sole and a seamless toe, warm when wet.",
    ),
    (
        "LMP-008",
        "Desk lamp",
        "64.00",
        25,
        "A steel arm that stays where you put it, a warm LED and a weighted base.",
    ),
]


class Command(BaseCommand):
    help = "Seed the catalogue and the demo staff account (idempotent), and print its login."

    def add_arguments(self, parser):
        parser.add_argument("--quiet", action="store_true", help="Do not print the credentials.")
        parser.add_argument(
            "--orders",
            type=int,
            default=0,
            help="Past orders to have for the staff's order export to work through (topped up "
            "to this many; written as history, with no jobs).",
        )

    def handle(self, *args, quiet: bool = False, orders: int = 0, **options):
        for sku, name, price, stock, description in CATALOGUE:
            Product.objects.update_or_create(
                sku=sku,
                defaults={
                    "name": name,
                    "price": Decimal(price),
                    "stock": stock,
                    "description": description,
                    "image": f"shop/products/{sku.lower()}.svg",
                },
            )
        email = settings.DEMO_STAFF_EMAIL
        password = settings.DEMO_STAFF_PASSWORD
        User = get_user_model()
        staff, _ = User.objects.get_or_create(username=email, defaults={"email": email})
        staff.is_staff = staff.is_superuser = True
        staff.set_password(password)
        staff.save()
        # A webhook endpoint pointing at the sandbox receiver, sharing its secret.
        inbox, _ = WebhookInbox.objects.get_or_create(
            name="demo", defaults={"secret": new_secret()}
        )
        WebhookEndpoint.objects.get_or_create(
            url=f"{settings.SANDBOX_BASE_URL}/webhooks/demo",
            defaults={"secret": inbox.secret, "description": "the sandbox receiver (demo)"},
        )
        added = seed_past_orders(orders) if orders else 0
        if not quiet:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Seeded {len(CATALOGUE)} products"
                    + (f" and {added} past orders" if added else "")
                    + f". Staff login: {email} / {password}"
                )
            )


HISTORY_EMAIL = "regular@example.com"


def seed_past_orders(wanted: int) -> int:
    """Top the demo's past orders up to `wanted`: paid orders of one regular customer, spread
    over the last 30 days, for the order export (/ops/exports) to have rows to work through.
    History, written directly: they had their jobs before the demo started, so none are
    recorded now (no charge, no email). Returns how many were added."""
    User = get_user_model()
    user, _ = User.objects.get_or_create(username=HISTORY_EMAIL, defaults={"email": HISTORY_EMAIL})
    customer, _ = Customer.objects.get_or_create(user=user, defaults={"name": "A regular"})
    missing = wanted - Order.objects.filter(customer=customer).count()
    if missing <= 0:
        return 0
    products = list(Product.objects.all())
    now = timezone.now()
    pick = random.Random(missing)  # noqa: S311 - demo data, not secrets
    with transaction.atomic():
        orders = Order.objects.bulk_create(
            Order(customer=customer, status=Order.Status.PAID) for _ in range(missing)
        )
        lines = []
        for order in orders:
            product, quantity = pick.choice(products), pick.randint(1, 3)
            lines.append(
                OrderLine(order=order, product=product, quantity=quantity, unit_price=product.price)
            )
            order.total = product.price * quantity
            order.created_at = now - timedelta(seconds=pick.randint(0, 30 * 86_400))
        OrderLine.objects.bulk_create(lines)
        Order.objects.bulk_update(orders, ["total", "created_at"], batch_size=500)
    return missing
