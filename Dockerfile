# One image for every process of the stack: web (gunicorn), workers, beat, Flower.
FROM python:3.11-slim-bookworm

# REMAP_SIGTERM: a worker's SIGTERM (a deploy, `docker stop`) is Celery's soft shutdown, after
# which its running jobs are handed back at once (jobs/shutdown.py). Only workers read it.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    REMAP_SIGTERM=SIGQUIT \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH="/opt/venv/bin:$PATH"

RUN pip install --no-cache-dir uv==0.13.9 \
    && useradd --create-home --uid 1000 app

WORKDIR /app
# What production runs and nothing else (no demo, test, bench or lint groups), from the lock;
# first, so that code changes do not reinstall them.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-default-groups --no-install-project

COPY --chown=app:app . .
RUN DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput \
    && mkdir -p /app/var/metrics /app/var/private /app/var/exports && chown -R app:app /app/var

USER app
EXPOSE 8000
# The web's check (gunicorn answers); compose gives the other processes checks of their own.
HEALTHCHECK --interval=10s --timeout=6s --start-period=30s --retries=3 \
    CMD ["python", "bin/healthcheck", "answers", "8000", "/api/health"]
CMD ["gunicorn", "--config", "config/gunicorn.conf.py", "config.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
