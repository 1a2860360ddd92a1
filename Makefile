# Two commands for a fresh machine: `make demo` and `make test`. Every target sets up what it needs:
# the virtualenv and Python deps (uv's cache keeps a second run offline), the Java deps (Maven's ~/.m2),
# and the real services (`tapewatch infra up`, idempotent).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Data-only packages, installed without their dependencies: we read their files and never import them.
# ob-analytics ships a real Bitstamp BTC/USD capture (producers/bitstamp_capture.py) but requires pandas 3,
# which pyproject.toml excludes, so pip cannot install it alongside the dev extra; mlfinpy ships a real
# E-mini S&P 500 futures tape (producers/es_tape.py) and pins an older numpy and pandas; cntext ships the financial
# sentiment dictionaries that training/news_lexicon.py extracts into detectors/news/lexicons/ (its code pulls gensim,
# openai, PyMuPDF and numpy < 2).
DATA_PACKAGES := ob-analytics==0.1.0 mlfinpy==0.1.2 cntext==2.2.1
# A data-only Maven artifact, resolved into ~/.m2 like the servers' jars: ta4j's examples ship a week of real
# Bitstamp BTC/USD trades from 2013 (producers/bitstamp_2013.py reads them out of the jar).
DATA_JARS := org.ta4j:ta4j-examples:0.15
# Data-only source distributions, fetched (sha256-pinned in tapewatch/data_packages.py) into ~/.cache/tapewatch and
# never built: pyqstrat ships real 1-minute bars of four US stocks (producers/us_stock_bars.py reads them).
DATA_SDISTS := pyqstrat==1.0.2
# The venv holds every extra (`.[all,dev]`: the trading signals' torch, Spark, the console's web stack) since both
# commands run all of it; `pip install .` alone is the surveillance without them.
# The stamp changes whenever pyproject.toml or the data packages do, so dependency edits reinstall and nothing
# else does.
DEPS_STAMP := $(VENV)/.deps-$(shell { cat pyproject.toml; echo '$(DATA_PACKAGES) $(DATA_JARS) $(DATA_SDISTS)'; } | sha256sum | cut -c1-16)
PYTEST_ARGS ?=
# The integration tests share the real services, but each has its own topics, schemas and index prefixes: two
# processes take them file by file; the tests that stop or restart a shared service (marked `disruptive`) run
# alone afterwards.
INTEGRATION_TESTS = $(BIN)/pytest -m "integration and not disruptive" -n 2 --dist loadfile --durations=25 \
	$(PYTEST_ARGS) && $(BIN)/pytest -m "integration and disruptive" --durations=5 $(PYTEST_ARGS)
# The demo stops by itself and prints its summary; `make demo DEMO_ARGS=` runs until Ctrl-C.
DEMO_ARGS ?= --duration 120

.PHONY: deps compiled browser infra lint docs format check test unit integration demo bench status down clean

# uv installs the same resolution as pip (same index, same newest versions) in about a quarter of the time, since it
# installs in parallel; pip installs uv itself, so nothing is needed beforehand. It reads the platform's certificates
# and pip's find-links, as pip does, and compiles the bytecode as pip does: where PYTHONDONTWRITEBYTECODE is set (this
# machine, CI) nothing else would, and every process would compile torch and pandas again at each start.
UV_PIP := $(BIN)/uv pip install --python $(BIN)/python -q --system-certs --compile-bytecode \
	$(if $(PIP_FIND_LINKS),--find-links $(PIP_FIND_LINKS))

# pyspark comes as a source distribution only, which uv fetches and builds again at each fresh install and keeps as a
# new revision of about 1 GB: `uv cache prune` drops the unreachable ones, or every clean clone grows the cache.
$(DEPS_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --progress-bar off -q uv
	$(UV_PIP) -e '.[all,dev]'
	$(UV_PIP) --no-deps $(DATA_PACKAGES)
	$(BIN)/python -m tapewatch.infra.data_jars $(DATA_JARS)
	$(BIN)/python -m tapewatch.infra.data_sdists $(DATA_SDISTS)
	$(BIN)/uv cache prune -q
	@rm -f $(VENV)/.deps-*
	@touch $@

deps: $(DEPS_STAMP)

# The hot per-record modules (the order-flow core, the market-by-order book and its public detectors:
# tapewatch/compiled.py's MODULES) compiled with mypyc into build/mypyc/ (tapewatch/mypyc_build.py): about a minute
# when a file they are built from changed (the sources they import, pyproject.toml, the Python, mypy), a fraction of a
# second otherwise. tapewatch serves them only while every one of those files is as it was built from, else runs
# pure Python and warns; TAPEWATCH_PURE=1 runs pure Python. Both forms send the same bytes (tests/unit/test_compiled*).
compiled: deps
	@TAPEWATCH_PURE=1 $(BIN)/python -m tapewatch.mypyc_build

# The console's browser tests drive Debian's Chromium through its chromedriver (never a downloaded browser).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; }; }

infra: deps
	$(BIN)/tapewatch infra up

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The documentation site (mkdocs.yml, docs/) into the git-ignored site/: --strict fails on a broken link or anchor
# and on a page left out of the navigation, so `make test` catches docs that drifted (not with --quiet: mkdocs 1.6
# then drops the warnings before strict mode counts them, and a broken link passes).
docs: deps
	$(BIN)/mkdocs build --strict --site-dir site

format: deps
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The edit loop: lint and the unit tests (no server), the tests spread over the cores.
check: lint compiled
	$(BIN)/pytest -m "not integration" -n auto $(PYTEST_ARGS)

# The whole suite: the integration tests in order in one process (they share the real services; those that restart a
# service go last) and, beside them in a second process, the unit tests (no server), whose report follows the
# integration tests' report; the slowest 25 of each are printed. The set-up steps run side by side (the services start
# while mypy checks and mypyc compiles), each one's output kept together.
test: deps
	$(MAKE) --no-print-directory -j4 -O lint docs infra browser compiled
	@mkdir -p var
	@$(BIN)/pytest -m "not integration" --durations=25 -p no:cacheprovider $(PYTEST_ARGS) > var/unit-tests.log 2>&1 & \
	unit=$$!; integration=0; unit_status=0; \
	{ $(INTEGRATION_TESTS); } || integration=$$?; \
	wait $$unit || unit_status=$$?; cat var/unit-tests.log; \
	exit $$(( integration != 0 ? integration : unit_status ))

unit: compiled
	$(BIN)/pytest -m "not integration" $(PYTEST_ARGS)

integration: infra browser compiled
	$(INTEGRATION_TESTS)

demo: infra compiled
	$(BIN)/tapewatch run $(DEMO_ARGS)

bench: infra compiled
	$(BIN)/tapewatch bench all

status: deps
	$(BIN)/tapewatch infra status

down: deps
	$(BIN)/tapewatch infra down

clean: down
	rm -rf var reports
