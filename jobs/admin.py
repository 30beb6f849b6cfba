from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from jobs.models import DeadLetter, Effect, Job


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    """The ledger is an audit trail, written only by the job machinery: look, do not touch.

    Deleting stays allowed, for the operator who cleans up after a demo.
    """

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ("name", "state", "queue", "attempts", "created_at", "finished_at")
    list_filter = ("state", "queue", "name")
    search_fields = ("id",)
    date_hierarchy = "created_at"


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    list_display = ("job", "status", "attempts", "short_error", "failed_at", "resolved_by")
    list_filter = ("status",)
    list_select_related = ("job", "resolved_by")
    search_fields = ("job__id", "job__name", "error")
    date_hierarchy = "failed_at"

    @admin.display(description="error")
    def short_error(self, letter: DeadLetter) -> str:
        return letter.error if len(letter.error) <= 80 else f"{letter.error[:79]}…"


@admin.register(Effect)
class EffectAdmin(ReadOnlyAdmin):
    list_display = ("key", "job", "created_at")
    list_select_related = ("job",)
    search_fields = ("key",)
