from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.module_loading import autodiscover_modules


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Background jobs"

    def ready(self) -> None:
        # Their system checks and signal receivers register themselves on import.
        from jobs import checks, connections, heartbeat, log_context, pauses, shutdown  # noqa: F401

        # Jobs are recorded by name (jobs.dispatch): every process that records one must know
        # the tasks declared under those names, not only the workers, where Celery's own
        # discovery (config/celery.py) imports them. As the admin finds each app's admin.py.
        autodiscover_modules("tasks")

        # The job counts' triggers, back after a migration that rebuilt the ledger's table.
        from jobs.counts import ensure_installed

        post_migrate.connect(ensure_installed, sender=self, dispatch_uid="jobs.counts")
