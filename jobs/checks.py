"""System checks for the settings that keep Redis from running a job twice."""

from django.conf import settings
from django.core.checks import Warning, register


@register()
def broker_timeouts(app_configs, **kwargs) -> list[Warning]:
    visibility = settings.BROKER_VISIBILITY_TIMEOUT_SECONDS
    warnings = []
    # A worker holds a retry's message, unacknowledged, for its whole countdown.
    if visibility <= settings.JOBS_RETRY_BACKOFF_MAX_SECONDS:
        warnings.append(
            Warning(
                "The longest retry backoff is not below the broker's visibility timeout.",
                hint="Redis would deliver the waiting retry a second time (celery#2481). "
                "Lower JOBS_RETRY_BACKOFF_MAX_SECONDS or raise BROKER_VISIBILITY_TIMEOUT_SECONDS.",
                id="jobs.W001",
            )
        )
    if visibility <= settings.JOBS_LEASE_SECONDS:
        warnings.append(
            Warning(
                "A job's lease (its longest run) is not below the broker's visibility timeout.",
                hint="Redis would deliver a running job again while it runs. "
                "Raise BROKER_VISIBILITY_TIMEOUT_SECONDS.",
                id="jobs.W002",
            )
        )
    if settings.JOBS_LEASE_SECONDS <= settings.CELERY_TASK_TIME_LIMIT:
        warnings.append(
            Warning(
                "A job's lease is not longer than its hard time limit.",
                hint="A second delivery could start while the first still runs. "
                "Raise JOBS_LEASE_SECONDS above JOBS_TIME_LIMIT.",
                id="jobs.W003",
            )
        )
    return warnings
