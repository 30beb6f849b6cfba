"""A web worker imports at start what its first request would: the views of every URL and the
broker's transport (kombu's and redis-py's modules take over half a second to import). Without
this, the first health check a fresh gunicorn worker answered while the broker was frozen took
1.6 s on CI's two cores, against the second's 0.3 s (docs/guarantees.md, "Health")."""

import subprocess
import sys
import textwrap

from django.conf import settings


def test_the_wsgi_module_loads_the_views_and_the_broker_transport():
    probe = textwrap.dedent(
        """
        import sys
        import config.wsgi
        from django.conf import settings
        from kombu.transport import TRANSPORT_ALIASES
        # From the URL alone: asking the app for a connection would import the transport
        # (the app's own, jobs.redis_transport, is named in Celery(amqp=...)).
        scheme = settings.CELERY_BROKER_URL.partition("://")[0]
        modules = {TRANSPORT_ALIASES[scheme].partition(":")[0], "shop.api.views", "jobs.views"}
        if scheme in ("redis", "rediss", "sentinel"):
            modules.add("jobs.redis_transport")
        print(sorted(modules - set(sys.modules)) or "all loaded")
        """
    )
    # A process of its own: this one has imported everything long ago.
    finished = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=settings.BASE_DIR,
    )
    assert finished.stdout.strip() == "all loaded", finished.stderr
