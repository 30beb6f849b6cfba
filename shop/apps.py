from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "shop"
    verbose_name = "Shop"

    def ready(self) -> None:
        from jobs.signals import job_finished
        from shop import metrics

        job_finished.connect(metrics.observe_order_completion, dispatch_uid="order-completion")
