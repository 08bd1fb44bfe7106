# Reproducible GAN/VAE benchmark. The README's two commands: `make repro` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist
export PATH := $(CURDIR)/$(BIN):$(PATH)
export MPLBACKEND := Agg

.PHONY: setup dataset postgres chromium repro retrain test test-fast bench bench-evaluators exps ui server lock help

help:  ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup: $(STAMP) dataset postgres chromium  ## Create .venv and install the project (a no-op when up to date).

# Re-installs only when the project's dependencies or the constraints change.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev,ray]'
	touch $@

# Fashion-MNIST from Debian's package when we may install it; otherwise `prepare` downloads it.
dataset:
	@if [ ! -d $(FASHION_MNIST) ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing dataset-fashion-mnist"; \
		apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
		|| { apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; } \
		|| echo "warning: could not install dataset-fashion-mnist; prepare will download Fashion-MNIST"; \
	fi

# PostgreSQL for `make server` and its integration test; Debian's package when we may install it.
postgres:
	@if ! command -v pg_ctl >/dev/null && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 \
		&& [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing postgresql"; \
		apt-get install -y -qq postgresql >/dev/null 2>&1 \
		|| { apt-get update -qq && apt-get install -y -qq postgresql; } \
		|| echo "warning: could not install postgresql; make server and its test need it"; \
	fi

# Debian's chromium, which the report's browser test drives through playwright (no browser download).
chromium:
	@if ! command -v chromium >/dev/null && [ ! -x /usr/bin/chromium ] \
		&& [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium"; \
		apt-get install -y -qq chromium >/dev/null 2>&1 \
		|| { apt-get update -qq && apt-get install -y -qq chromium; } \
		|| echo "warning: could not install chromium; the report's browser test needs it"; \
	fi

repro: setup  ## Run the whole grid: prepare → fit-evaluator → train → evaluate → report.
	$(BIN)/dvc repro

retrain: setup  ## Scheduled job: dvc repro (REPRO_ARGS=... passes flags), then the FID quality gate against the committed reports/metrics.json.
	$(BIN)/dvc repro $(REPRO_ARGS)
	$(BIN)/python -m stages gate $(RETRAIN_ARGS)

# Test files run on TEST_WORKERS processes (pytest-xdist), a file each so module fixtures are built once; most slow
# tests wait on subprocesses, servers and DVC, so two workers on 2 cores save a quarter (four cost more than two).
# TEST_WORKERS=0 runs in this process (for a debugger or -s).
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

test: setup  ## Run the whole test suite (what CI runs), with the slowest tests listed.
	$(PYTEST) --durations=25 $(PYTEST_ARGS)

test-fast: setup  ## The edit-test loop: every test not marked slow (no DVC pipelines, servers, kills or torchrun).
	$(PYTEST) -m "not slow" --durations=10 $(PYTEST_ARGS)

bench: setup  ## Benchmark: train loop vs a bare PyTorch loop, evaluation, peak RSS, no-op repro, contrastive evaluator fit (benchmarks/results.json).
	$(BIN)/dvc repro prepare fit-evaluator
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

bench-evaluators: setup  ## After make repro: rank the grid in other evaluators' features (merged labels, labels dropped) (benchmarks/evaluators.json).
	$(BIN)/python -m benchmarks.evaluators $(BENCH_ARGS)

# What people compare across experiments: `dvc exp show` alone has a column per param, dependency and metric key.
# Kept: the headline metrics and the grid; shown when they differ between the experiments listed: every param
# (what an experiment changed); dropped: the dependencies' hashes.
EXPS_KEEP := ^(Experiment|Created|State)$$|^(best|lead_.*|feature_space|evaluator_quality|fid[.@].*|grid\..*)$$
EXPS_DROP := ^(data|models|metrics|pipeline|runs|stages)(/|$$)

exps: setup  ## Compare experiments (after dvc exp run --queue ...): the headline metrics and the params they changed.
	$(BIN)/dvc exp show --only-changed --keep '$(EXPS_KEEP)' --drop '$(EXPS_DROP)' $(EXPS_ARGS)

ui: setup  ## Print each experiment's runs-table URL, then serve the MLflow UI on http://127.0.0.1:5000.
	$(BIN)/python -m stages ui $(UI_ARGS)

server: setup  ## Team MLflow server: PostgreSQL store + local artifacts on http://127.0.0.1:5000 (Ctrl-C stops).
	$(BIN)/python -m stages server

lock: $(STAMP)  ## Refresh requirements.lock from the installed environment.
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > requirements.lock
