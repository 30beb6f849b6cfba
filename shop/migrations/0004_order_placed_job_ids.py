"""An order remembers the jobs its placing request answered with, so that an idempotent replay
answers with the same ones (shop.models.Order.placed_job_ids).

Orders placed before keep the answer their replay gave until now: the jobs recorded about
them. Only an order with an Idempotency-Key can be replayed, so only those are filled in.
"""

from django.db import migrations, models


def forwards(apps, schema_editor):
    Order = apps.get_model("shop", "Order")
    Job = apps.get_model("jobs", "Job")
    ContentType = apps.get_model("contenttypes", "ContentType")
    order_type = ContentType.objects.filter(app_label="shop", model="order").first()
    if order_type is None:  # a new database: no order yet
        return
    for order in Order.objects.filter(idempotency_key__isnull=False).iterator():
        jobs = Job.objects.filter(concerning_type=order_type, concerning_id=str(order.pk))
        order.placed_job_ids = [
            str(pk) for pk in jobs.order_by("created_at").values_list("pk", flat=True)
        ]
        order.save(update_fields=["placed_job_ids"])


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0003_customer_phone"),
        ("jobs", "0006_job_concerning"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="placed_job_ids",
            field=models.JSONField(blank=True, db_default=[], default=list),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop, elidable=True),
    ]
