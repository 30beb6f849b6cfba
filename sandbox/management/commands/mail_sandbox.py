import signal
import threading

from aiosmtpd.controller import Controller
from django.conf import settings
from django.core.management.base import BaseCommand

from sandbox.mailbox import MaildirHandler


class Command(BaseCommand):
    help = "Run the sandbox SMTP server: every message sent to it lands in the demo's mailbox."

    def handle(self, *args, **options):
        host = settings.EMAIL_HOST
        port = settings.EMAIL_PORT
        controller = Controller(MaildirHandler(settings.SANDBOX_MAILDIR), hostname=host, port=port)
        controller.start()
        self.stdout.write(f"sandbox SMTP on {host}:{port}, mailbox {settings.SANDBOX_MAILDIR}")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            controller.stop()
