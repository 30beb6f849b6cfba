from django.core.management.base import BaseCommand

from jobs import schedules


class Command(BaseCommand):
    help = "Create beat's periodic tasks in the database (kept as edited, unless --reset)."

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="Put edited schedules back.")

    def handle(self, *args, reset: bool = False, **options):
        written = schedules.seed(reset=reset)
        self.stdout.write(f"schedules written: {', '.join(written) if written else 'none'}")
