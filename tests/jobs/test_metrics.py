"""The metrics as Prometheus reads them: counted in the processes where jobs run and are
published (prometheus_client's multiprocess mode), served whole by the web's /metrics, valid
for promtool; and the alert rules that ship in ops/, proved with promtool's unit tests."""

import json
import logging
import re
import shutil
import socket
import subprocess
from collections import defaultdict
from datetime import timedelta

import pytest
import requests
from django.db.models import Count, Sum
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from jobs import dispatch
from jobs.models import DeadLetter, Job
from shop.models import Order, Product
from stack.processes import BIN, ROOT, Stack
from stack.waiting import free_port, wait_until
from tests.jobs import metrics_tasks

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not found: install Debian's `prometheus` package (.ci/run does)",
)
OPS = ROOT / "ops"
TOKEN = "scrape-me"

LIBRARY_COUNTS = "from prometheus_client import Counter; Counter('flower_events', 'x').inc()"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(exposition: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    found: dict[str, float] = defaultdict(float)
    for (sample, labels), number in samples.items():
        if sample == name:
            found[dict(labels)[label]] += number
    return dict(found)


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def stack(transactional_db, tmp_path):
    built = Stack(tmp_path, overrides={"METRICS_TOKEN": TOKEN})
    built.start_broker()
    yield built
    built.stop()


@pytest.mark.integration
def test_the_web_scrape_counts_what_every_process_of_the_host_did(stack):
    """Jobs published by the web and the relay and run by a prefork worker's pool processes:
    the web's /metrics counts each end, retry, dead letter and publish once, with its labels;
    the histograms hold one run per ledger attempt and one pickup per first run; the order's
    completion is observed once; and promtool finds the exposition valid."""
    Product.objects.create(sku="MUG-001", name="Mug", price="14.00", stock=10)
    host_port = free_port()
    stack.start_web(workers=2, threads=4)
    stack.start_mail()
    stack.start_relay()
    worker = stack.start_worker(
        pool="prefork",
        concurrency=2,
        include=metrics_tasks.__name__,
        env={"METRICS_LISTEN": f"127.0.0.1:{host_port}"},
    )

    # Another library of the host counting with prometheus_client (Flower does, in the demo).
    other = stack.spawn(
        "other", str(BIN / "python"), "-c", LIBRARY_COUNTS, env={"DJANGO_SETTINGS_MODULE": None}
    )
    assert other.wait(30) == 0, other.output()
    customer = stack.sign_up("metrics@example.com")
    order_id = stack.order(customer["token"], "MUG-001")["order"]["id"]
    # Committed here and never published: the relay publishes them, as after a crash.
    Job.objects.bulk_create(
        dispatch.new_job(name)
        for name in (
            "tests.metrics_succeed",
            "tests.metrics_fail_once",
            "tests.metrics_fail_for_good",
        )
    )

    def everything_settled() -> bool:
        return (
            not Job.objects.exclude(state__in=["succeeded", "dead", "scheduled"]).exists()
            and DeadLetter.objects.exists()
            and Order.objects.filter(pk=order_id, jobs_settled_at__isnull=False).exists()
        )

    finished = "shop_jobs_finished_total"
    ledger = Job.objects.exclude(state="scheduled")

    # A process counts what it did next to its database write, not inside it: a job's end
    # and an order's completion just after they are written (the scrape may lag the ledger),
    # a publish from a commit just before it is stamped (it may be ahead). So the scrape is
    # asked again until it has caught up: the lagging counts at least the ledger's (checked
    # equal below, with their numbers), the publishes equal to the ledger's.
    def settled_scrape() -> tuple[requests.Response, Samples] | None:
        if not everything_settled():
            return None
        response = stack.get("/metrics", token=TOKEN)
        assert response.status_code == 200, response.text
        samples = parse(response.text)
        caught_up = (
            sum(by_label(samples, finished, "job").values()) >= ledger.count()
            and value(samples, "shop_order_completion_seconds_count") >= 1
            and sum(by_label(samples, "shop_jobs_published_total", "source").values())
            == Job.objects.aggregate(n=Sum("publishes"))["n"]
        )
        return (response, samples) if caught_up else None

    response, samples = wait_until(
        settled_scrape, timeout=90, message="every job to end and the scrape to count it"
    )
    assert value(samples, finished, job="tests.metrics_succeed", outcome="succeeded") == 1
    assert value(samples, finished, job="tests.metrics_fail_once", outcome="succeeded") == 1
    assert value(samples, finished, job="tests.metrics_fail_for_good", outcome="dead") == 1
    assert value(samples, finished, job="tests.metrics_fail_for_good", outcome="succeeded") == 0
    assert value(samples, "shop_jobs_retries_total", job="tests.metrics_fail_once") == 1
    assert by_label(samples, "shop_jobs_retries_total", "job") == {"tests.metrics_fail_once": 1}
    assert by_label(samples, "shop_jobs_dead_letters_total", "job") == {
        "tests.metrics_fail_for_good": 1
    }
    # Every job of the ledger, the signup's and the order's included, counted once.
    assert sum(by_label(samples, finished, "job").values()) == ledger.count()
    for name, attempts in ledger.values_list("name").annotate(n=Sum("attempts")):
        runs = value(samples, "shop_jobs_run_duration_seconds_count", job=name)
        assert runs == attempts, name
    assert (
        value(samples, "shop_jobs_run_duration_seconds_count", job="tests.metrics_fail_once") == 2
    )
    first_runs = dict(ledger.filter(attempts__gte=1).values_list("queue").annotate(n=Count("pk")))
    assert by_label(samples, "shop_jobs_pickup_latency_seconds_count", "queue") == {
        queue: float(n) for queue, n in first_runs.items()
    }
    # The web's publisher, the relay and beat's sweep together sent what the ledger counts.
    published = by_label(samples, "shop_jobs_published_total", "source")
    assert sum(published.values()) == Job.objects.aggregate(n=Sum("publishes"))["n"]
    assert published["commit"] >= 1  # the signup's and the order's, from gunicorn's workers
    assert published["relay"] >= 3  # the three recorded above, and the retry
    # The order's jobs all ended (its review reminder waits for its hour): observed once.
    assert value(samples, "shop_order_completion_seconds_count") == 1
    order = Order.objects.get(pk=order_id)
    took = (order.jobs_settled_at - order.created_at).total_seconds()
    assert value(samples, "shop_order_completion_seconds_sum") == pytest.approx(took, abs=0.01)
    # The levels, read at scrape time; the windowed "last minute" gauges are gone.
    assert value(samples, "shop_jobs_dead_letters_open") == 1
    assert value(samples, "shop_jobs_workers_online") == 1
    assert value(samples, "shop_jobs_unpublished_oldest_age_seconds") == 0
    assert "last_minute" not in response.text
    assert {name for name, _ in samples if not name.startswith("shop_")} == set()

    # The worker's main process serves the host's directory for a scrape of its own: the
    # same counts, without the ledger's levels (the web serves those).
    host = parse(requests.get(f"http://127.0.0.1:{host_port}/metrics", timeout=10).text)
    assert by_label(host, finished, "job") == by_label(samples, finished, "job")
    assert not any(name.startswith("shop_jobs_queue_") for name, _ in host)

    if PROMTOOL is not None:
        checked = promtool("check", "metrics", stdin=response.text)
        assert checked.returncode == 0, checked.stdout + checked.stderr

    # The worker stops, its pool processes with it: what they counted stays.
    worker.stop()
    after = parse(stack.get("/metrics", token=TOKEN).text)
    assert by_label(after, finished, "job") == by_label(samples, finished, "job")
    if PROMTOOL is None:
        pytest.skip("the counts hold; promtool not found to check the exposition (.ci/run)")


@pytest.mark.django_db(transaction=True)
def test_an_order_completes_when_its_last_unfinished_job_ends_and_is_observed_once():
    """shop's receiver of jobs.signals.job_finished: the order completes when the last of its
    jobs ends (a job scheduled for later aside), not before, and not again."""
    from jobs import signals
    from shop.metrics import ORDER_COMPLETION
    from tests.factories import CustomerFactory

    def observed() -> float:
        [family] = ORDER_COMPLETION.collect()
        return next(s.value for s in family.samples if s.name.endswith("_count"))

    order = Order.objects.create(customer=CustomerFactory(), total="14.00")
    first, last, later = (
        dispatch.new_job("tests.metrics_succeed", concerning=order),
        dispatch.new_job("tests.metrics_fail_for_good", concerning=order),
        dispatch.new_job("tests.metrics_succeed", concerning=order, eta=order.created_at),
    )
    Job.objects.bulk_create([first, last, later])
    about = {"concerning_type_id": first.concerning_type_id, "concerning_id": str(order.pk)}
    before = observed()

    Job.objects.filter(pk=first.pk).update(state="succeeded")
    signals.finished(job_id=str(first.pk), name=first.name, outcome="succeeded", **about)
    assert observed() == before  # the other one is still queued
    assert Order.objects.get(pk=order.pk).jobs_settled_at is None

    Job.objects.filter(pk=last.pk).update(state="dead")
    signals.finished(job_id=str(last.pk), name=last.name, outcome="dead", **about)
    assert observed() == before + 1
    assert Order.objects.get(pk=order.pk).jobs_settled_at is not None
    # Its end told twice (a second worker's hook, a requeued job ending again): once only.
    signals.finished(job_id=str(last.pk), name=last.name, outcome="dead", **about)
    assert observed() == before + 1


def test_of_the_processes_given_one_metrics_address_the_first_serves_it_the_others_log(
    settings, caplog, monkeypatch
):
    from jobs import metrics

    # An earlier test's logging set-up (an in-process worker's) may have disabled the logger.
    monkeypatch.setattr(metrics.logger, "disabled", False)
    caplog.set_level(logging.WARNING, logger=metrics.logger.name)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings.METRICS_LISTEN = f"127.0.0.1:{taken.getsockname()[1]}"
        metrics.serve_host_metrics()  # a second process of the host: it does not fail
    assert "metrics: not serving on 127.0.0.1:" in caplog.text


@needs_promtool
def test_the_alert_rules_are_valid_and_fire_as_their_unit_tests_say():
    checked = promtool("check", "rules", str(OPS / "prometheus" / "alerts.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", str(OPS / "prometheus" / "alerts_test.yml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout + tested.stderr


@needs_promtool
def test_the_scrape_config_example_is_valid(tmp_path):
    # promtool wants the secret files it names to exist: the example's, made up here.
    example = (OPS / "prometheus" / "prometheus.yml").read_text()
    for secret in ("shop-metrics-token", "flower-password"):
        assert f"/etc/prometheus/{secret}" in example
        (tmp_path / secret).write_text("made-up\n")
    (tmp_path / "prometheus.yml").write_text(example.replace("/etc/prometheus/", f"{tmp_path}/"))
    shutil.copy(OPS / "prometheus" / "alerts.yml", tmp_path)
    checked = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


@needs_promtool
@pytest.mark.django_db
def test_the_dashboard_queries_parse_and_name_only_metrics_the_app_exports(tmp_path):
    from jobs.metrics import EVENTS, LevelsCollector

    dashboard = json.loads((OPS / "grafana" / "shop-jobs.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert len(exprs) >= 15
    exported = {family.name for family in [*EVENTS.collect(), *LevelsCollector().collect()]}
    named = {
        re.sub(r"_(bucket|count|sum|total)$", "", name)
        for expr in exprs
        for name in re.findall(r"\bshop_[a-z_]+", expr)
    }
    assert named <= exported, named - exported
    assert named >= exported, f"not on the dashboard: {exported - named}"
    # promtool parses PromQL in rule files: each query as a recording rule, with Grafana's
    # variables as Grafana fills them in.
    grafana = {"$__rate_interval": "1m", "$job": ".*", "$queue": ".*"}
    rules = [
        {"record": f"dashboard:query_{n}", "expr": _fill(expr, grafana)}
        for n, expr in enumerate(exprs)
    ]
    (tmp_path / "queries.yml").write_text(json.dumps({"groups": [{"name": "q", "rules": rules}]}))
    checked = promtool("check", "rules", str(tmp_path / "queries.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _fill(expr: str, variables: dict[str, str]) -> str:
    for variable, filled in variables.items():
        expr = expr.replace(variable, filled)
    return expr


@pytest.mark.django_db(transaction=True)
def test_a_job_given_up_after_its_workers_kept_dying_counts_as_finished_dead(settings):
    from celery import current_app

    from jobs import ledger
    from jobs.metrics import JOBS_FINISHED

    def dead() -> float:
        return JOBS_FINISHED.labels(job="tests.metrics_succeed", outcome="dead")._value.get()

    job = dispatch.new_job("tests.metrics_succeed")
    job.state, job.attempts, job.lost_runs = "running", 1, settings.JOBS_MAX_LOST_RUNS - 1
    job.lease_until = job.created_at = timezone.now() - timedelta(minutes=5)
    job.save()
    before = dead()

    # Its message delivered once more, after the lease of the last run that held it ran out.
    current_app.tasks[job.name].apply(task_id=str(job.pk), headers={ledger.EPOCH_HEADER: "0"})

    assert Job.objects.get(pk=job.pk).state == "dead"
    assert dead() == before + 1
