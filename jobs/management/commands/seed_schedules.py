from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from jobs import schedules


class Command(BaseCommand):
    help = (
        "Create beat's periodic tasks in the database, and move unedited ones from an earlier "
        "release's default to today's (edited ones are kept, unless --reset)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--reset", action="store_true", help="Put edited schedules back.")

    def handle(self, *args: Any, reset: bool = False, **options: Any) -> None:
        written = schedules.seed(reset=reset)
        names = ", ".join(written) if written else "none"
        self.stdout.write(f"schedules written or retired: {names}")
