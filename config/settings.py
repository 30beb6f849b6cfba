"""Settings, read from the environment in this one place (django-environ).

Every setting has a working development default, so `make demo` needs no configuration:
SQLite under var/, the embedded Valkey broker, the sandbox third parties and the sandbox
mailbox. Point DATABASE_URL, CELERY_BROKER_URL and EMAIL_URL at real services to leave them.
"""

from pathlib import Path

import django_stubs_ext
import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from config.media import media_origins, object_storages
from jobs import sentinel

# Django's generic classes subscriptable at run time as in the type checker: ModelAdmin[Job].
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
# Runtime state of the embedded defaults (SQLite, broker data, media, mailbox); git-ignored.
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)

env = environ.Env()
# An optional .env (docs/settings.md); read_env would log a warning for every process without one.
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

# --- Core -------------------------------------------------------------------------------------

DEBUG = env.bool("DJANGO_DEBUG", default=True)
_DEV_SECRET_KEY = "dev-only-insecure-key-change-me-in-production"  # noqa: S105 - refused below
SECRET_KEY = env("DJANGO_SECRET_KEY", default="") or _DEV_SECRET_KEY
if not DEBUG and SECRET_KEY == _DEV_SECRET_KEY:
    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY: the development key is public.")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# Production (DJANGO_DEBUG=false) is HTTPS-only by default; `manage.py check --deploy` is clean.
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD = not DEBUG
if env.bool("DJANGO_BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Scripts, styles, images and requests from this site only; no inline script or style
# anywhere (the pages, the live timeline's fetches, the admin, the sandbox): docs/deployment.md,
# "Headers". Under DEBUG, django-csp sends none with 404 and 500 answers, so that Django's
# technical error pages (inline styles and scripts) show.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # Before staticfiles: its `runserver` (shop/management/commands) is the one manage.py runs.
    "shop",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_celery_results",
    "django_celery_beat",
    "csp",
    "jobs",
    "sandbox",
    "webhooks",
]

MIDDLEWARE = [
    "shop.middleware.request_id",
    # A body too large or with too many fields, the database down: JSON on the API, not HTML.
    "shop.middleware.UnservableRequests",
    "django.middleware.security.SecurityMiddleware",
    # Above whitenoise, so that the static files carry the policy too.
    "csp.middleware.CSPMiddleware",
    # Serves the admin's and the pages' static files under gunicorn too (compose, Dockerfile).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "shop.middleware.upload_size_limit",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
# The sandbox third parties keep their records in a database of their own when this is set,
# as real third parties would: on SQLite, their writes then don't queue for the shop's write
# lock (`make bench` sets it; the demo and the tests keep one database).
if env("SANDBOX_DATABASE_URL", default=""):
    DATABASES["sandbox"] = env.db("SANDBOX_DATABASE_URL")
    DATABASE_ROUTERS = ["sandbox.routers.SandboxRouter"]
for database in DATABASES.values():
    # Keep connections between requests (and between jobs, jobs.connections): opening one
    # costs more than a request's own queries (PostgreSQL forks a backend for each). Health
    # checks replace a connection the database dropped before it is used.
    database.setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    database["CONN_HEALTH_CHECKS"] = True
    if database["ENGINE"] == "django.db.backends.sqlite3":
        # Web, worker and beat are separate processes writing one file: WAL lets readers run
        # beside the writer, IMMEDIATE takes the write lock at BEGIN (no deadlock on lock
        # upgrade), and the timeout makes a writer wait for the lock instead of failing.
        database["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": env.float("SQLITE_TIMEOUT_SECONDS", default=20),
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    elif database["ENGINE"] == "django.db.backends.postgresql":
        # Django turns psycopg's prepared statements off, for connection poolers that do not
        # keep them. Its own queries bind on the client and are never prepared either way;
        # this lets the two statements every job runs (jobs.ledger: the claim and the finish)
        # be prepared: the server's CPU per job 0.71 against 1.16 ms (docs/performance.md). Off
        # (DATABASE_PREPARED_STATEMENTS=false) behind a transaction pooler that does not
        # keep prepared statements (PgBouncer before 1.21, or without max_prepared_statements).
        database.setdefault("OPTIONS", {}).setdefault(
            "prepare_threshold",
            5 if env.bool("DATABASE_PREPARED_STATEMENTS", default=True) else None,
        )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so that worker threads and worker processes see the test data.
    # The test suite gives each run its own (tests/embedded_services.py).
    DATABASES["default"]["TEST"] = {
        "NAME": env("SQLITE_TEST_DATABASE", default=str(VAR_DIR / "test.sqlite3"))
    }
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -------------------------------------------------------------------------------------

# Argon2 is the hasher Django's docs recommend, here at OWASP's minimum memory cost (19 MiB
# instead of 100) and a few hashes at a time per process (shop.passwords). API tokens are not
# passwords and are stored as SHA-256 digests instead (see shop.tokens), so no slow hash sits
# on the per-request path.
PASSWORD_HASHERS = [
    "shop.passwords.BoundedArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# Hashes that run at once in a process (each holds 19 MiB while it runs); more wait their turn.
PASSWORD_HASHING_THREADS = env.int("PASSWORD_HASHING_THREADS", default=2)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "catalogue"
LOGOUT_REDIRECT_URL = "catalogue"

# --- Internationalisation, static and media ---------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise serves from here after collectstatic
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(VAR_DIR / "media")))
# The invoices are their customers' alone: kept apart from the media (which is served to anyone
# under MEDIA_URL) and served only by the views that check who asks (shop.views.order_invoice).
# Any storage backend will do (an object store's, say): the code goes through the storage API.
PRIVATE_MEDIA_ROOT = Path(env("PRIVATE_MEDIA_ROOT", default=str(VAR_DIR / "private")))
# Staff's order exports (shop.exports): customer data, so not under MEDIA_ROOT, which debug
# mode serves to anyone. Downloaded through a staff-only view; the `io` workers write here and
# the web processes read, so both need the same storage.
EXPORTS_ROOT = Path(env("EXPORTS_ROOT", default=str(VAR_DIR / "exports")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "invoices": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": PRIVATE_MEDIA_ROOT / "invoices", "base_url": None},
    },
    "exports": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(EXPORTS_ROOT), "base_url": None},
    },
}
# Media on S3-compatible object storage (django-storages, its own setting names): with a
# bucket named, the public media, the invoices and the exports are objects under media/,
# invoices/ and exports/ of that bucket, so that web and worker hosts share no disk. Unset,
# the file system above (the demo's). Credentials left unset fall to boto3's own chain (an
# instance role, ~/.aws); the endpoint is for a store that is not AWS (MinIO, moto).
AWS_STORAGE_BUCKET_NAME = env("AWS_STORAGE_BUCKET_NAME", default="")
AWS_S3_ENDPOINT_URL = env("AWS_S3_ENDPOINT_URL", default=None)
AWS_S3_REGION_NAME = env("AWS_S3_REGION_NAME", default=None)
AWS_ACCESS_KEY_ID = env("AWS_ACCESS_KEY_ID", default=None)
AWS_SECRET_ACCESS_KEY = env("AWS_SECRET_ACCESS_KEY", default=None)
# Path-style addressing (endpoint/bucket/key) for stores that have no per-bucket host names.
AWS_S3_ADDRESSING_STYLE = env("AWS_S3_ADDRESSING_STYLE", default=None)
# The public media's links: signed and expiring by default, so the bucket itself stays private;
# false with a bucket (or a CDN, AWS_S3_CUSTOM_DOMAIN) that serves media/ to anyone.
AWS_QUERYSTRING_AUTH = env.bool("AWS_QUERYSTRING_AUTH", default=True)
AWS_S3_CUSTOM_DOMAIN = env("AWS_S3_CUSTOM_DOMAIN", default=None)
if AWS_STORAGE_BUCKET_NAME:
    STORAGES.update(object_storages())
    # The account page's thumbnail is an image from the store's (or the CDN's) host.
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["img-src"] += media_origins(
        bucket=AWS_STORAGE_BUCKET_NAME,
        endpoint_url=AWS_S3_ENDPOINT_URL,
        region=AWS_S3_REGION_NAME,
        custom_domain=AWS_S3_CUSTOM_DOMAIN,
    )

# --- Uploads and orders -----------------------------------------------------------------------

AVATAR_MAX_BYTES = env.int("AVATAR_MAX_BYTES", default=5 * 1024 * 1024)
# Checked from the image header before decoding: a decompression bomb is refused with a 400.
AVATAR_MAX_PIXELS = env.int("AVATAR_MAX_PIXELS", default=4096 * 4096)
AVATAR_THUMBNAIL_SIZES = (64, 256)
# Multipart bodies larger than the avatar limit are refused by their declared length, before
# they are parsed (shop.middleware); within it, uploads over 2.5 MB are spooled to disk.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

ORDER_MAX_QUANTITY = env.int("ORDER_MAX_QUANTITY", default=100)
ORDER_MAX_LINES = env.int("ORDER_MAX_LINES", default=50)
REVIEW_REMINDER_DELAY_SECONDS = env.int("REVIEW_REMINDER_DELAY_SECONDS", default=3600)
# The shop's name on its invoices.
SHOP_NAME = env("SHOP_NAME", default="shop + jobs")
# Order exports (shop.exports): orders written per chunk, each chunk a checkpoint a run that
# takes over after a lost one resumes from; the longest date range one export may span; and a
# pause after each chunk, 0 but for a demo that wants to watch the progress bar move.
EXPORT_CHUNK_ROWS = env.int("EXPORT_CHUNK_ROWS", default=500)
EXPORT_MAX_DAYS = env.int("EXPORT_MAX_DAYS", default=366)
EXPORT_CHUNK_DELAY_SECONDS = env.float("EXPORT_CHUNK_DELAY_SECONDS", default=0.0)

# The staff account `manage.py seed_demo` creates for the admin, Flower-free parts of the demo.
DEMO_STAFF_EMAIL = env("DEMO_STAFF_EMAIL", default="staff@example.com")
DEMO_STAFF_PASSWORD = env("DEMO_STAFF_PASSWORD", default="demo-staff-password")

# --- Email ------------------------------------------------------------------------------------

# Defaults to the sandbox SMTP server (`manage.py mail_sandbox`); compose points it at Mailpit.
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="smtp://127.0.0.1:2525")
vars().update(EMAIL_CONFIG)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=5)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="shop <shop@example.com>")
EMAIL_MESSAGE_ID_DOMAIN = env("EMAIL_MESSAGE_ID_DOMAIN", default="shop.example.com")

# --- Third parties (sandboxes by default) -----------------------------------------------------

# WEB_PORT wins over PORT because honcho gives every process of the Procfile its own PORT.
WEB_PORT = env.int("WEB_PORT", default=env.int("PORT", default=8000))
# Where the shop's pages are, for the links in its emails: workers send them, with no request to
# take the address from.
SITE_URL = env("SITE_URL", default=f"http://127.0.0.1:{WEB_PORT}").rstrip("/")
SANDBOX_BASE_URL = env("SANDBOX_BASE_URL", default=f"http://127.0.0.1:{WEB_PORT}/sandbox")
CRM_URL = env("CRM_URL", default=f"{SANDBOX_BASE_URL}/crm")
PAYMENTS_URL = env("PAYMENTS_URL", default=f"{SANDBOX_BASE_URL}/payments")
ANALYTICS_URL = env("ANALYTICS_URL", default=f"{SANDBOX_BASE_URL}/analytics")
SMS_URL = env("SMS_URL", default=f"{SANDBOX_BASE_URL}/sms")
THIRD_PARTY_TIMEOUT_SECONDS = env.float("THIRD_PARTY_TIMEOUT_SECONDS", default=5.0)

# Starting latency and failure rate of each sandbox; the /sandbox/ page changes them at run time.
SANDBOX_SERVICES = {
    service: {
        "latency_ms": env.int(f"SANDBOX_{service.upper()}_LATENCY_MS", default=0),
        "failure_rate": env.float(f"SANDBOX_{service.upper()}_FAILURE_RATE", default=0.0),
    }
    for service in ("crm", "payments", "analytics", "sms", "smtp", "webhooks")
}
# Bearer token Prometheus sends to /metrics; unset, /metrics answers in debug mode only.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# `address:port` where a host without a web process serves its counters and histograms (the
# relay and each worker's main process start a server there; jobs.metrics). Unset: none.
METRICS_LISTEN = env("METRICS_LISTEN", default="")
# Where the ops dashboard links to Flower.
FLOWER_URL = env("FLOWER_URL", default=f"http://127.0.0.1:{env.int('FLOWER_PORT', default=5555)}/")
SANDBOX_MAILDIR = Path(env("SANDBOX_MAILDIR", default=str(VAR_DIR / "mailbox")))
# The sandbox (fake third parties, their switches, the mailbox) is for the demo and the tests:
# it is not mounted unless asked for, and is asked for by default only in debug mode.
SANDBOX_ENABLED = env.bool("SANDBOX_ENABLED", default=DEBUG)
# Webhook endpoints on private or loopback addresses are refused (server-side request
# forgery), except where the sandbox receiver on loopback is the point: the demo and tests.
WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = env.bool(
    "WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", default=SANDBOX_ENABLED
)
# The events the shop sends to webhook endpoints (shop/webhook_events.py); staff choose among
# them when they register an endpoint.
WEBHOOK_EVENTS = (
    "order.placed",
    "order.paid",
    "order.payment_failed",
    "order.shipped",
    "order.cancelled",
)

# --- Celery -----------------------------------------------------------------------------------

EMBEDDED_BROKER_PORT = env.int("EMBEDDED_BROKER_PORT", default=6479)
CELERY_BROKER_URL = env(
    "CELERY_BROKER_URL",
    default=env("REDIS_URL", default=f"redis://127.0.0.1:{EMBEDDED_BROKER_PORT}/0"),
)
# A broker behind Redis Sentinel (docs/deployment.md, "Broker failover with Sentinel"): the
# URL names the sentinels, kombu's way (`sentinel://host:26379;sentinel://host:26380;...`, the
# primary's password and database in the first), and BROKER_SENTINEL_MASTER the primary they
# watch. Every client of the broker's Redis asks them for the primary: Celery (the transport
# option below), the rate limits, the throttles' cache, the health check (jobs.sentinel).
BROKER_SENTINEL = sentinel.is_sentinel_url(CELERY_BROKER_URL)
BROKER_SENTINEL_MASTER = env("BROKER_SENTINEL_MASTER", default="")
# The sentinels' own password, if they have one (a sentinel without one refuses an AUTH).
BROKER_SENTINEL_PASSWORD = env("BROKER_SENTINEL_PASSWORD", default="")
if BROKER_SENTINEL and not BROKER_SENTINEL_MASTER:
    raise ImproperlyConfigured(
        "CELERY_BROKER_URL names sentinels: set BROKER_SENTINEL_MASTER to the name of the "
        "primary they monitor (`sentinel monitor <name> ...` in their configuration)."
    )
_BROKER_SOCKET_OPTIONS = {
    # Without a socket timeout a broker that accepts connections but never answers hangs the
    # publishing request forever (kombu's redis transport docs).
    "socket_timeout": env.float("BROKER_SOCKET_TIMEOUT", default=2.0),
    "socket_connect_timeout": env.float("BROKER_CONNECTION_TIMEOUT", default=1.0),
}
_SENTINEL_KWARGS = sentinel.sentinel_kwargs(
    password=BROKER_SENTINEL_PASSWORD, **_BROKER_SOCKET_OPTIONS
)
# The CRM's API limit, counted across every worker (jobs.rate_limits) in Redis: the
# broker's unless said otherwise ("memory://" counts per process, for a non-Redis broker).
CRM_RATE_LIMIT = env("CRM_RATE_LIMIT", default="10/second")
RATE_LIMITS_STORAGE_URL = env(
    "RATE_LIMITS_STORAGE_URL",
    default=(
        sentinel.limits_url(CELERY_BROKER_URL, master_name=BROKER_SENTINEL_MASTER)
        if BROKER_SENTINEL
        else CELERY_BROKER_URL
        if CELERY_BROKER_URL.startswith("redis")
        else "memory://"
    ),
)
# Behind Sentinel, the window is read and written on the primary alone: a replica's copy lags.
RATE_LIMITS_STORAGE_OPTIONS = (
    {"use_replicas": False, "sentinel_kwargs": _SENTINEL_KWARGS, **_BROKER_SOCKET_OPTIONS}
    if RATE_LIMITS_STORAGE_URL.startswith("redis+sentinel")
    else {}
)
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
# JSON only: a pickle payload on the broker would be code execution on every worker.
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE

# The queues, and the workers that take them. Each job names its queue where it is declared
# (`@job("jobs.charge_payment", queue="critical")`; jobs/checks.py holds them to this list).
QUEUES = ("critical", "default", "bulk", "crm", "media", "webhooks", "dead_letter")
CELERY_TASK_QUEUES = tuple(Queue(name) for name in QUEUES)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = ("jobs.routing.route_to_declared_queue",)
# The workers of a deployment (Procfile, docker-compose.yml, bench/, tests/faults; a test keeps
# them in step with this):
# - io:    the I/O-bound jobs, on a thread pool (they wait on third parties, not on the CPU);
# - crm:   the CRM jobs, alone: their threads wait for the CRM's rate limit (jobs.rate_limits),
#          and on a shared worker a backlog of them would hold the threads and prefetch slots
#          that every other queue needs (tests/faults/test_backlogs.py shows the layout
#          keeps them moving);
# - media: the CPU-bound thumbnails, on a process pool of one process per core.
JOBS_WORKER_QUEUES = {
    "io": ("critical", "default", "bulk", "webhooks", "dead_letter"),
    "crm": ("crm",),
    "media": ("media",),
}

# A killed worker's job must run again: ack after the job, and reject (requeue) when the process
# running it dies. One message at a time per process, so a long job does not hold others back.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes the database connection before and after every job unless
# told to reuse it; jobs.connections closes it only when it is old, dropped or may be broken.
CELERY_DB_REUSE_MAX = env.int("WORKER_DB_REUSE_MAX", default=1000)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("JOBS_SOFT_TIME_LIMIT", default=60)
CELERY_TASK_TIME_LIMIT = env.int("JOBS_TIME_LIMIT", default=90)

# Retry policy shared by every job (jobs.base.LedgerTask).
JOBS_RETRY_BACKOFF_SECONDS = env.int("JOBS_RETRY_BACKOFF_SECONDS", default=2)
JOBS_RETRY_BACKOFF_MAX_SECONDS = env.int("JOBS_RETRY_BACKOFF_MAX_SECONDS", default=300)
JOBS_MAX_RETRIES = env.int("JOBS_MAX_RETRIES", default=5)
# A run holds its job for a lease that its process renews every JOBS_HEARTBEAT_SECONDS for
# another JOBS_LEASE_SECONDS (jobs.heartbeat): a second delivery meanwhile is dropped, and once
# the process dies the lease runs out within JOBS_LEASE_SECONDS and the relay gives the job to
# another worker. Several heartbeats long, so that a busy process never loses a live lease.
JOBS_HEARTBEAT_SECONDS = env.float("JOBS_HEARTBEAT_SECONDS", default=5.0)
JOBS_LEASE_SECONDS = env.float("JOBS_LEASE_SECONDS", default=20.0)
# A job whose worker died under it this many times goes to the dead letters, not round again.
JOBS_MAX_LOST_RUNS = env.int("JOBS_MAX_LOST_RUNS", default=3)

# Redis puts a message that was taken and not acknowledged back on its queue after the
# visibility timeout. It is the broker's last resort, not how this app recovers: a dead run
# is found by its lease, a lost message by the relay, and no worker holds a retry or a delay
# as a countdown (they wait in the ledger). Longer than the hard time limit, so that the
# message of a job that is still running is not handed out a second time (harmless, as the
# claim drops it, but wasted); jobs.checks says so when it isn't.
BROKER_VISIBILITY_TIMEOUT_SECONDS = env.int("BROKER_VISIBILITY_TIMEOUT_SECONDS", default=300)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": BROKER_VISIBILITY_TIMEOUT_SECONDS,
    # Look for timed-out messages every N seconds (kombu's default sweep is ~100 s).
    "unacked_restore_interval": env.int("BROKER_RESTORE_INTERVAL_SECONDS", default=10),
    "unacked_restore_throttle": 1,
    **_BROKER_SOCKET_OPTIONS,
    # kombu's sentinel transport asks the sentinels for this primary at every connection.
    **(
        {"master_name": BROKER_SENTINEL_MASTER, "sentinel_kwargs": _SENTINEL_KWARGS}
        if BROKER_SENTINEL
        else {}
    ),
}
# Requests must not hang when the broker is down: fail the publish fast and leave the job in
# the ledger, where the relay picks it up (jobs.dispatch). After a failure, publishing is not
# tried again for a few seconds, so requests during an outage answer at once.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.1,
    "interval_max": 0.2,
}
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("BROKER_CONNECTION_TIMEOUT", default=1.0)
JOBS_BROKER_DOWN_PAUSE_SECONDS = env.float("JOBS_BROKER_DOWN_PAUSE_SECONDS", default=5.0)
# How often a worker's threads may take the interpreter lock from one another (config.celery).
WORKER_SWITCH_INTERVAL_SECONDS = env.float("WORKER_SWITCH_INTERVAL_SECONDS", default=0.0005)
# On SIGTERM (a deploy; REMAP_SIGTERM=SIGQUIT in the worker's environment makes it Celery's
# soft shutdown), finish running jobs for this long, then hand unfinished ones back at once
# (jobs.shutdown). Every call a job makes is bounded below it (THIRD_PARTY_TIMEOUT_SECONDS,
# EMAIL_TIMEOUT; jobs.checks). An idle worker stops at once: it holds no countdowns.
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = env.float("WORKER_SOFT_SHUTDOWN_TIMEOUT", default=10.0)

# Beat's schedules live in the database (django-celery-beat), seeded from this by `manage.py
# seed_schedules` (jobs/schedules.py) and editable in the admin. Due reminders and retries are
# jobs in the ledger: the relay process (`manage.py relay_outbox`) publishes them when they
# fall due, every JOBS_RELAY_INTERVAL_SECONDS. Beat runs the same sweep only as a backstop, for
# a relay process that is down: rarely, so that the housekeeping does not bury the business
# jobs in Flower under a task every few seconds.
CELERY_BEAT_SCHEDULER = "config.beat:Scheduler"  # django-celery-beat's, touching the file below
BEAT_ALIVE_FILE = env("BEAT_ALIVE_FILE", default="")  # for a health check (docker-compose.yml)
JOBS_SCHEDULES = {
    "outbox relay sweep (backstop of relay_outbox)": {
        "task": "jobs.relay_unpublished_jobs",
        "every": 300,
    },
    "purge old jobs and task results": {
        "task": "jobs.purge_old_records",
        "crontab": {"minute": "17"},
    },
    "weekly sales report (Mondays 06:00)": {
        "task": "jobs.schedule_weekly_sales_report",
        "crontab": {"minute": "0", "hour": "6", "day_of_week": "1"},
    },
}
JOBS_RETENTION_DAYS = env.int("JOBS_RETENTION_DAYS", default=30)
# The outbox relay (`manage.py relay_outbox`, and beat's sweep as a backstop) publishes jobs
# that were committed but not published (broker down, web process killed after commit) once
# they are this old, and looks every JOBS_RELAY_INTERVAL_SECONDS: due jobs and retries are as
# punctual as that.
JOBS_RELAY_AFTER_SECONDS = env.float("JOBS_RELAY_AFTER_SECONDS", default=2.0)
JOBS_RELAY_INTERVAL_SECONDS = env.float("JOBS_RELAY_INTERVAL_SECONDS", default=1.0)
# A job published this long ago and not started, while its queue is empty, lost its message
# (taken by a worker that died before starting it, or gone with a broker that restarted
# empty): the relay publishes it again. A queue with messages waiting is a backlog: nothing
# of it is published again.
JOBS_STALLED_AFTER_SECONDS = env.float("JOBS_STALLED_AFTER_SECONDS", default=15.0)

# --- Throttling -------------------------------------------------------------------------------

# Over these rates a client gets 429 with Retry-After (shop.throttling, docs/api.md): "N/second",
# "N/minute", "N/hour" or "N/day". Per client address, except login_account (per account). A
# person signing up, mistyping a password or two, and using the API never comes near them.
# The test suite, the fault tests and the benchmarks, many clients on one loopback address,
# run with THROTTLING_ENABLED=false.
THROTTLE_RATES = (
    {
        # Signups, by the API and the page together.
        "signup": env("THROTTLE_SIGNUP_RATE", default="20/hour"),
        # Login attempts on the page (each an Argon2 hash, right password or not).
        "login": env("THROTTLE_LOGIN_RATE", default="30/hour"),
        "login_account": env("THROTTLE_LOGIN_ACCOUNT_RATE", default="10/hour"),
        # Unknown or revoked bearer tokens (good ones are not counted).
        "bad_token": env("THROTTLE_BAD_TOKEN_RATE", default="30/minute"),
    }
    if env.bool("THROTTLING_ENABLED", default=True)
    else {}
)
# The throttles count here, so it must be shared by every web process: the broker's Redis
# (its keys expire with their window), unless CACHE_URL names another. Short timeouts: a Redis
# that does not answer costs a request half a second, then the throttle lets it through.
CACHE_URL = env("CACHE_URL", default=CELERY_BROKER_URL)
CACHE_TIMEOUT_SECONDS = env.float("CACHE_TIMEOUT_SECONDS", default=0.5)
_CACHE_SOCKET_OPTIONS = {
    "socket_connect_timeout": CACHE_TIMEOUT_SECONDS,
    "socket_timeout": CACHE_TIMEOUT_SECONDS,
}
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "cache",
            "OPTIONS": _CACHE_SOCKET_OPTIONS,
        }
        if CACHE_URL.startswith("redis")
        else {
            # The primary behind the broker's sentinels (same primary name): one URL in a list,
            # or Django would split it at its `;` into servers of its own.
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": [CACHE_URL],
            "KEY_PREFIX": "cache",
            "OPTIONS": {
                "pool_class": "jobs.sentinel.SentinelPool",
                "master_name": BROKER_SENTINEL_MASTER,
                "sentinel_password": BROKER_SENTINEL_PASSWORD,
                **_CACHE_SOCKET_OPTIONS,
            },
        }
        if sentinel.is_sentinel_url(CACHE_URL)
        # A broker that is not Redis: each process counts for itself.
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- API --------------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "shop.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "shop.api.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # drf-spectacular's, with `security: []` on the operations that read no credentials and the
    # X-Request-ID header on every one (shop.api.schema).
    "DEFAULT_SCHEMA_CLASS": "shop.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "shop.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    # Proxies in front of the app that append the client's address to X-Forwarded-For. 0: the
    # throttles count the connection's address, and a client cannot forge another.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "shop + jobs API",
    "DESCRIPTION": "Signup, catalogue, orders and the status of their background jobs.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.add_refusals_any_operation_may_answer",
        "config.schema.inline_nullable_objects",
    ],
}

# --- Logging ----------------------------------------------------------------------------------

# Every line carries the request id of the web request behind it and the job it runs in
# (jobs.log_context), in web and worker alike. LOG_FORMAT=json for one JSON object a line.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "jobs.log_context.ContextFilter"}},
    "formatters": {
        "plain": {
            "format": "%(asctime)s %(levelname)s %(name)s [req %(request_id)s job %(job_id)s] "
            "%(message)s"
        },
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(job_id)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env("LOG_FORMAT", default="plain"),
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
# The worker logs through the configuration above instead of replacing it with its own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
