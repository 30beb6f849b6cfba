"""A delivery names what its event is about as any model instance (a generic relation),
instead of a foreign key to the shop's Order: the webhooks app no longer knows the shop."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models.functions import Cast


def forwards(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    WebhookDelivery = apps.get_model("webhooks", "WebhookDelivery")
    order_type, _ = ContentType.objects.get_or_create(app_label="shop", model="order")
    WebhookDelivery.objects.filter(order__isnull=False).update(
        subject_type=order_type, subject_id=Cast("order_id", models.CharField(max_length=64))
    )


def backwards(apps, schema_editor):
    WebhookDelivery = apps.get_model("webhooks", "WebhookDelivery")
    Order = apps.get_model("shop", "Order")
    for delivery in WebhookDelivery.objects.filter(subject_type__model="order"):
        delivery.order = Order.objects.filter(pk=delivery.subject_id).first()
        delivery.save(update_fields=["order"])


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("shop", "0001_initial"),
        ("webhooks", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookdelivery",
            name="subject_type",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="contenttypes.contenttype",
            ),
        ),
        migrations.AddField(
            model_name="webhookdelivery",
            name="subject_id",
            field=models.CharField(blank=True, default="", max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(forwards, backwards),
        migrations.RemoveField(model_name="webhookdelivery", name="order"),
        migrations.AddIndex(
            model_name="webhookdelivery",
            index=models.Index(fields=["subject_type", "subject_id"], name="delivery_subject"),
        ),
    ]
