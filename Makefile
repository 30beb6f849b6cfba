# Everything a fresh machine needs, from python3 (3.11+) and make alone.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py

PORT ?= 8000
FLOWER_PORT ?= 5555
FLOWER_BASIC_AUTH ?= admin:flower-demo
export WEB_PORT := $(PORT)
export FLOWER_PORT FLOWER_BASIC_AUTH
# uv must use the machine's Python, never download one.
export UV_PYTHON_DOWNLOADS := never

DEMO_PROCESSES := web worker crm media beat relay flower mail
ifeq ($(strip $(CELERY_BROKER_URL)$(REDIS_URL)),)
DEMO_PROCESSES += broker
endif

.PHONY: help install test bench lint format demo migrate seed clean kill-worker kill-broker broker-down broker-up

help:
	@echo "make demo    install, migrate, seed, then run web + worker + beat + Flower (+ broker)"
	@echo "make test    install, then lint (ruff, mypy, import layers) and the whole pytest suite"
	@echo "make bench   the benchmarks, side by side (BENCH_SIZE=tiny for a smoke run)"
	@echo "make lint    ruff, mypy and the import layers;  make format  apply ruff's fixes"
	@echo "make clean   remove the environments and var/ (databases, broker data, media, mail)"
	@echo "while the demo runs, in another terminal:"
	@echo "  make kill-worker   SIGKILL the workers and their pools (they are started again)"
	@echo "  make kill-broker   SIGKILL the embedded broker (started again from its append-only file)"
	@echo "  make broker-down   freeze the embedded broker (SIGSTOP);  make broker-up  thaw it"

$(UV):
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The environment holds what production runs plus the dependency groups (pyproject.toml) of
# what is asked for, and nothing else: the demo gets the embedded broker and mail sandbox, the
# tests their tools and the linters, the benchmarks the chart. One stamp names the groups
# installed; asking for others syncs again (uv's cache makes that a matter of seconds).
$(VENV)/.groups-%: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON) --no-default-groups $(addprefix --group ,$(subst +, ,$*))
	@rm -f $(VENV)/.groups-*
	@touch $@

install: $(VENV)/.groups-demo

lint: $(VENV)/.groups-test+lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(VENV)/.groups-test+lint
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(BIN)/python -m pytest

# Not part of `make test`: it takes half an hour on two cores (bench/__main__.py).
BENCH_SIZE ?= full
bench: $(VENV)/.groups-bench
	$(BIN)/python -m bench --size $(BENCH_SIZE)

migrate: install
	@mkdir -p var/run
	$(MANAGE) migrate --noinput

# Past orders for the staff's order export (/ops/exports) to work through, paced in the demo
# alone so that its progress bar can be watched: a pause of DEMO_EXPORT_CHUNK_DELAY seconds
# after each chunk of DEMO_EXPORT_CHUNK_ROWS orders (docs/operations.md, "Order exports").
DEMO_ORDERS ?= 3000
DEMO_EXPORT_CHUNK_ROWS ?= 100
DEMO_EXPORT_CHUNK_DELAY ?= 1

seed: migrate
	$(MANAGE) seed_demo --orders $(DEMO_ORDERS)
	$(MANAGE) seed_schedules

demo: seed
	@echo ""
	@echo "  shop         http://127.0.0.1:$(PORT)/"
	@echo "  mailbox      http://127.0.0.1:$(PORT)/sandbox/mailbox/"
	@echo "  sandbox      http://127.0.0.1:$(PORT)/sandbox/   (latency and failure switches)"
	@echo "  admin        http://127.0.0.1:$(PORT)/admin/     (staff login above)"
	@echo "  API schema   http://127.0.0.1:$(PORT)/api/openapi.json"
	@echo "  Flower       http://127.0.0.1:$(FLOWER_PORT)/      (basic auth $(FLOWER_BASIC_AUTH))"
	@echo "  processes    $(DEMO_PROCESSES)   -- Ctrl-C stops them all"
	@echo ""
	@# The demo's processes are one host: they count into one directory, emptied here, before
	@# any of them starts, and read whole by the web's /metrics (jobs.metrics).
	rm -rf var/metrics && mkdir -p var/metrics
	PROMETHEUS_MULTIPROC_DIR="$(CURDIR)/var/metrics" PATH="$(CURDIR)/$(BIN):$$PATH" \
	EXPORT_CHUNK_ROWS="$${EXPORT_CHUNK_ROWS:-$(DEMO_EXPORT_CHUNK_ROWS)}" \
	EXPORT_CHUNK_DELAY_SECONDS="$${EXPORT_CHUNK_DELAY_SECONDS:-$(DEMO_EXPORT_CHUNK_DELAY)}" \
	$(BIN)/honcho start $(DEMO_PROCESSES)

# Breaking things on purpose, while `make demo` runs: each process is found by the pid file it
# wrote under var/run/ (bin/demo-signal), never by a name that could match somebody else's.
kill-worker:
	@bin/demo-signal KILL celery var/run/worker-*.pid && echo "workers and their pools killed; bin/respawn starts them again"

kill-broker:
	@bin/demo-signal KILL valkey var/run/broker.pid && echo "broker killed; it comes back from its append-only file"

broker-down:
	@bin/demo-signal STOP valkey var/run/broker.pid && echo "broker frozen: try a signup"

broker-up:
	@bin/demo-signal CONT valkey var/run/broker.pid && echo "broker back"

clean:
	rm -rf $(VENV) $(TOOLS) var
