"""What a job concerns becomes any model instance (a generic relation), instead of a
foreign key to each of the shop's Customer and Order.

Existing rows keep what they were about: a job with an order concerns that order, any other
job with a customer concerns that customer (before, an order's jobs named its customer too,
for the API's access check; the shop now asks the order for its owner).
"""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models.functions import Cast


def _content_type(apps, model: str):
    ContentType = apps.get_model("contenttypes", "ContentType")
    return ContentType.objects.get_or_create(app_label="shop", model=model)[0]


def forwards(apps, schema_editor):
    Job = apps.get_model("jobs", "Job")
    Job.objects.filter(order__isnull=False).update(
        concerning_type=_content_type(apps, "order"),
        concerning_id=Cast("order_id", models.CharField(max_length=64)),
    )
    Job.objects.filter(order__isnull=True, customer__isnull=False).update(
        concerning_type=_content_type(apps, "customer"),
        concerning_id=Cast("customer_id", models.CharField(max_length=64)),
    )


def backwards(apps, schema_editor):
    Job = apps.get_model("jobs", "Job")
    Order = apps.get_model("shop", "Order")
    Customer = apps.get_model("shop", "Customer")
    for job in Job.objects.exclude(concerning_type=None).select_related("concerning_type"):
        if job.concerning_type.model == "order":
            order = Order.objects.filter(pk=job.concerning_id).first()
            job.order, job.customer_id = order, order.customer_id if order else None
        elif job.concerning_type.model == "customer":
            job.customer = Customer.objects.filter(pk=job.concerning_id).first()
        job.save(update_fields=["order", "customer"])


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("jobs", "0005_job_epoch"),
        ("shop", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="concerning_type",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="contenttypes.contenttype",
            ),
        ),
        migrations.AddField(
            model_name="job",
            name="concerning_id",
            field=models.CharField(blank=True, max_length=64, default=""),
            preserve_default=False,
        ),
        migrations.RunPython(forwards, backwards),
        migrations.RemoveField(model_name="job", name="customer"),
        migrations.RemoveField(model_name="job", name="order"),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                fields=["concerning_type", "concerning_id", "created_at"], name="job_concerning"
            ),
        ),
    ]
