"""The shop's own metric: how long an order takes from being placed until every job about it
has finished. The job machinery knows nothing of orders; it says when a job ends
(jobs.signals.job_finished), and this receiver, connected in ShopConfig.ready, decides."""

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import Exists
from django.utils import timezone
from prometheus_client import Histogram

from jobs.metrics import EVENTS
from jobs.models import Job
from shop.models import Order

# Seconds when the third parties answer at once; minutes behind retries and backlogs.
ORDER_COMPLETION = Histogram(
    "shop_order_completion_seconds",
    "How long an order took from being placed until every job about it reached a final "
    "state (succeeded or dead; jobs scheduled for later, the review reminder, aside). "
    "Observed once per order.",
    buckets=(0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
    registry=EVENTS,
)

NOT_FINAL_NOR_LATER = [
    state for state in Job.State.values if state not in (*Job.FINAL_STATES, Job.State.SCHEDULED)
]


def observe_order_completion(
    sender: Any, *, concerning_type_id: int | None, concerning_id: str, **kwargs: Any
) -> None:
    """A job about an order ended: if it was the order's last unfinished one, stamp the order
    and observe how long it took. One read a job (an order's jobs by the job_concerning
    index), and a conditional UPDATE for the last; the stamp is the claim, so two jobs of one
    order ending at once on two workers observe it once, and a requeued job finishing again
    does not observe it again."""
    if concerning_type_id != ContentType.objects.get_for_model(Order).pk:
        return
    unfinished = Job.objects.filter(
        concerning_type_id=concerning_type_id,
        concerning_id=concerning_id,
        state__in=NOT_FINAL_NOR_LATER,
    )
    now = timezone.now()
    settled = Order.objects.filter(
        ~Exists(unfinished), pk=int(concerning_id), jobs_settled_at__isnull=True
    )
    # Read first: most jobs of an order end while others are still open, and an UPDATE that
    # matches nothing still takes SQLite's write lock, which every worker contends for.
    if not settled.exists():
        return
    if settled.update(jobs_settled_at=now):
        placed_at = Order.objects.values_list("created_at", flat=True).get(pk=int(concerning_id))
        ORDER_COMPLETION.observe(max(0.0, (now - placed_at).total_seconds()))
