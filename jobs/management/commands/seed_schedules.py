from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from jobs import schedules


class Command(BaseCommand):
    help = "Create beat's periodic tasks in the database (kept as edited, unless --reset)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--reset", action="store_true", help="Put edited schedules back.")

    def handle(self, *args: Any, reset: bool = False, **options: Any) -> None:
        written = schedules.seed(reset=reset)
        self.stdout.write(f"schedules written: {', '.join(written) if written else 'none'}")
