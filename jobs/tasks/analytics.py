from celery import shared_task

from jobs.base import LedgerTask
from shop import integrations


@shared_task(base=LedgerTask, name="jobs.track_analytics_event")
def track_analytics_event(*, event_id: str, name: str, properties: dict) -> dict:
    integrations.track_event(event_id=event_id, name=name, properties=properties)
    return {"event_id": event_id}
