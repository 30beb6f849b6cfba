import uuid
from collections.abc import Callable
from functools import cached_property
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from jobs import dispatch, operations
from jobs.models import DeadLetter, Effect, Job, OperatorAction, PausedQueue


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    """The ledger is an audit trail, written only by the job machinery: look, do not touch.

    Deleting stays allowed, for the operator who cleans up after a demo, except where it would
    lose an audit (dead letters, operators' actions, paused queues).
    """

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class NoDeleteAdmin(ReadOnlyAdmin):
    """No deletion at all: also no "Delete selected", and no deleting a job whose dead letter
    would go with it (the admin refuses a delete that takes objects the user may not delete)."""

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


def count_up_to(queryset: QuerySet[Any], limit: int) -> int:
    """How many rows the queryset has, counted no further than `limit + 1`, in no order (the
    first rows in any order are as many, and no sort is needed): a count that costs the same
    on a ledger of millions as on an empty one."""
    return queryset.order_by()[: limit + 1].count()


class CappedCountPaginator(Paginator[Any]):
    """Counts no further than `cap` rows: the admin counts its list on every page, and a count
    of a ledger of millions reads all of them (an index from end to end at best). Past the cap
    the page says "more than 10,000" (admin/jobs/*/pagination.html) and the filters narrow it."""

    cap = 10_000

    @cached_property
    def count(self) -> int:
        rows = self.object_list
        if not isinstance(rows, QuerySet):  # the admin pages querysets; a list is counted
            return len(rows)
        return count_up_to(rows, self.cap)

    @property
    def capped(self) -> bool:
        return self.count > self.cap

    @property
    def cap_text(self) -> str:
        return f"{self.cap:,}"


class IndexOrderedChangeList(ChangeList):
    """The list in the order its model admin gives, which an index holds, without the primary
    key Django adds after it to make pages stable among equal values: no index holds that
    order, and the database then sorts what it read (SQLite a temporary B-tree, PostgreSQL an
    incremental sort: tests/jobs/test_query_plans.py). Creation times are to the
    microsecond: a tie at a page's edge could only move a row between two pages. So the only
    column a person may sort by is the one whose index gives the order (`sortable_by`)."""

    def _get_deterministic_ordering(self, ordering: list[Any]) -> list[Any]:
        return ordering


class LedgerSizedAdmin(ReadOnlyAdmin):
    """A list of a table that grows with every job: counted up to a cap, never counted whole
    beside a filtered list, read in an index's order, and without a date hierarchy (its dates
    are a scan of the table). tests/jobs/test_query_plans.py holds it to that."""

    paginator = CappedCountPaginator
    show_full_result_count = False
    # "Show counts" would count every choice of every filter over the whole table.
    show_facets = admin.ShowFacets.NEVER

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return IndexOrderedChangeList

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        """Django's "Delete selected" too takes MAX_SELECTED rows at most: it gathers every
        row and what cascades from it for its confirmation page."""
        actions: dict[str, Any] = dict(super().get_actions(request))
        if actions.get("delete_selected"):
            delete, name, description = actions["delete_selected"]

            def delete_capped(
                modeladmin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Any]
            ) -> Any:
                if _too_many(modeladmin, request, queryset, title="Delete"):
                    return None
                return delete(modeladmin, request, queryset)

            actions["delete_selected"] = (delete_capped, name, description)
        return actions


def _exact_filter(title: str, field: str, choices: Callable[[], list[str]]) -> type:
    """A sidebar filter on `field` whose choices are what the code knows (the queues in the
    settings, the jobs registered), not a DISTINCT over millions of rows as Django's default
    filter for a plain field reads them. Its query string is the default filter's."""

    class ExactFilter(admin.SimpleListFilter):
        parameter_name = f"{field}__exact"

        def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
            return [(choice, choice) for choice in choices()]

        def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
            value = self.value()
            return queryset.filter(**{field: value}) if value else queryset

    ExactFilter.title = title
    return ExactFilter


# Selections acted on in one request, each in a transaction of its own: more than this would
# outlast the request's timeout. The filters narrow a selection; the dashboard's bulk form
# handles the dead letters a filter matches, however many.
MAX_SELECTED = 500


def _too_many(
    modeladmin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Any], *, title: str
) -> bool:
    """Whether more than MAX_SELECTED rows are selected; if so, the admin says so."""
    if count_up_to(queryset, MAX_SELECTED) <= MAX_SELECTED:
        return False
    modeladmin.message_user(
        request,
        f"{title}: select at most {MAX_SELECTED} at a time; narrow the list with the filters.",
        messages.ERROR,
    )
    return True


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), required=False)


Act = Callable[[Any, str], object]


def _with_reason(
    modeladmin: admin.ModelAdmin[Any],
    request: HttpRequest,
    queryset: QuerySet[Any],
    *,
    title: str,
    act: Act,
    reason_required: bool,
) -> HttpResponse | None:
    """An admin action that asks why on a confirmation page, then acts on each selected row
    through jobs.operations (which audits it); what could not be done is said, not hidden."""
    if _too_many(modeladmin, request, queryset, title=title):
        return None
    form = ReasonForm(request.POST if "apply" in request.POST else None)
    if form.is_valid():
        reason = form.cleaned_data["reason"].strip()
        if reason or not reason_required:
            done, refused = 0, []
            for obj in queryset:
                try:
                    act(obj, reason)
                    done += 1
                except (operations.NotOpen, operations.Conflict) as exc:
                    refused.append(f"{obj}: {exc}")
            modeladmin.message_user(request, f"{title}: {done} done.", messages.SUCCESS)
            for why in refused:
                modeladmin.message_user(request, why, messages.WARNING)
            return None
        form.add_error("reason", "A reason is required, for the audit.")
    return TemplateResponse(
        request,
        "admin/jobs/confirm_with_reason.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "objects": queryset,
            "form": form,
            "action": request.POST.get("action", ""),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "opts": modeladmin.model._meta,
            "reason_required": reason_required,
        },
    )


@admin.register(Job)
class JobAdmin(LedgerSizedAdmin):
    list_display = ("name", "state", "queue", "attempts", "created_at", "finished_at")
    # Each reads its jobs newest first from an index of its own (jobs.models.Job.Meta).
    list_filter = (
        "state",
        _exact_filter("queue", "queue", lambda: list(settings.QUEUES)),
        _exact_filter("name", "name", lambda: sorted(dispatch.ledger_job_names())),
    )
    search_fields = ("id",)
    search_help_text = "A job's id, as the API and the dashboard give it."
    ordering = ("-created_at",)  # the newest first, as on /ops/
    sortable_by = ("created_at",)
    actions = ["cancel_jobs"]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Job], search_term: str
    ) -> tuple[QuerySet[Job], bool]:
        """The job with that id, found by its key: Django's default, a substring of the id,
        reads every row."""
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(pk=uuid.UUID(term)), False
        except ValueError:
            return queryset.none(), False

    @admin.action(description="Cancel selected jobs (scheduled, queued or retrying)")
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> HttpResponse | None:
        by = operations.operator(request.user)
        return _with_reason(
            self,
            request,
            queryset,
            title="Cancel jobs",
            act=lambda job, reason: operations.cancel(str(job.pk), by=by, reason=reason),
            reason_required=True,
        )


@admin.register(DeadLetter)
class DeadLetterAdmin(NoDeleteAdmin):
    list_display = ("job", "status", "attempts", "short_error", "failed_at", "resolved_by")
    list_filter = ("status", "job__name")
    list_select_related = ("job", "resolved_by")
    search_fields = ("job__id", "job__name", "error")
    date_hierarchy = "failed_at"
    actions = ["requeue_letters", "discard_letters"]

    @admin.display(description="error")
    def short_error(self, letter: DeadLetter) -> str:
        return letter.error if len(letter.error) <= 80 else f"{letter.error[:79]}…"

    @admin.action(description="Requeue selected dead letters")
    def requeue_letters(
        self, request: HttpRequest, queryset: QuerySet[DeadLetter]
    ) -> HttpResponse | None:
        by = operations.operator(request.user)
        return _with_reason(
            self,
            request,
            queryset.select_related("job"),
            title="Requeue dead letters",
            act=lambda letter, reason: operations.requeue(letter, by=by, reason=reason),
            reason_required=False,
        )

    @admin.action(description="Discard selected dead letters")
    def discard_letters(
        self, request: HttpRequest, queryset: QuerySet[DeadLetter]
    ) -> HttpResponse | None:
        by = operations.operator(request.user)
        return _with_reason(
            self,
            request,
            queryset.select_related("job"),
            title="Discard dead letters",
            act=lambda letter, reason: operations.discard(letter, by=by, reason=reason),
            reason_required=True,
        )


@admin.register(OperatorAction)
class OperatorActionAdmin(NoDeleteAdmin):
    list_display = ("at", "by", "action", "queue", "job_name", "reason")
    list_filter = ("action", "queue")
    list_select_related = ("by",)
    date_hierarchy = "at"


class PauseForm(forms.ModelForm[PausedQueue]):
    queue = forms.ChoiceField(choices=[(q, q) for q in settings.QUEUES])

    class Meta:
        model = PausedQueue
        fields = ["queue", "reason"]


@admin.register(PausedQueue)
class PausedQueueAdmin(NoDeleteAdmin):
    """Adding a row pauses its queue, the action "Resume" resumes it: both through
    jobs.operations, which audits them and tells the workers."""

    list_display = ("queue", "paused_by", "paused_at", "reason")
    actions = ["resume_queues"]
    form = PauseForm

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_staff)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # a pause is resumed, not edited

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        return super().get_readonly_fields(request, obj) if obj else []

    def save_model(self, request: HttpRequest, obj: PausedQueue, form: Any, change: bool) -> None:
        paused = operations.pause(
            obj.queue, by=operations.operator(request.user), reason=obj.reason
        )
        obj.pk, obj.paused_by_id, obj.paused_at = paused.pk, paused.paused_by_id, paused.paused_at

    @admin.action(description="Resume selected queues")
    def resume_queues(
        self, request: HttpRequest, queryset: QuerySet[PausedQueue]
    ) -> HttpResponse | None:
        by = operations.operator(request.user)
        return _with_reason(
            self,
            request,
            queryset,
            title="Resume queues",
            act=lambda paused, reason: operations.resume(paused.queue, by=by, reason=reason),
            reason_required=False,
        )


@admin.register(Effect)
class EffectAdmin(LedgerSizedAdmin):
    list_display = ("key", "job", "created_at")
    list_select_related = ("job",)
    ordering = ("-pk",)  # the newest first, by the primary key's index
    sortable_by = ()
    search_fields = ("key",)
    search_help_text = "An effect's whole key, such as order-confirmation:<order id>."

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Effect], search_term: str
    ) -> tuple[QuerySet[Effect], bool]:
        """The effect with that key, found by its unique index, not by a substring of every
        key: there is one effect for each payment, email or push a job made."""
        term = search_term.strip()
        return (queryset.filter(key=term) if term else queryset), False
