# The two commands of README: `make run` and `make test`. Both create and reuse .venv.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export OPENBLAS_NUM_THREADS ?= 1
export AIRFLOW__COSMOS__ENABLE_TELEMETRY ?= False

.PHONY: run test lint format setup setup-spark clean airflow mlflow dashboard

setup: $(STAMP)

# Reinstall only when the pins change; uv makes the install take seconds, not minutes.
# Quiet: one line, then errors only (`make setup V=1` shows the installer's output).
UV_QUIET := $(if $(V),,--quiet)
$(STAMP): requirements.txt pyproject.toml scripts/setup-system.sh
	@echo "setting up $(VENV) from requirements.txt (uv, about 20 s)"
	@bash scripts/setup-system.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	@$(BIN)/uv pip install $(UV_QUIET) --python $(BIN)/python -r requirements.txt
	@touch $(STAMP)

# The Spark engine's extra (pyspark, dbt-spark, Java 17): AFFINITY_ENGINE=spark needs it.
SPARK_STAMP := $(VENV)/.installed-spark
setup-spark: $(SPARK_STAMP)

$(SPARK_STAMP): requirements-spark.txt $(STAMP) scripts/setup-java.sh
	bash scripts/setup-java.sh
	$(BIN)/uv pip install --python $(BIN)/python -r requirements.txt -r requirements-spark.txt
	@# pyspark comes as an sdist: each install left another 0.5-1.3 GB build in uv's cache
	@# (55 GB on one machine). Prune drops the builds no longer referenced.
	$(BIN)/uv cache prune --quiet
	touch $(SPARK_STAMP)

run: $(STAMP)
	$(BIN)/affinity run $(ARGS)

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

# Server mode without Docker: Airflow UI on :8080, MLflow UI on :5000 (Ctrl-C stops).
airflow: $(STAMP)
	$(BIN)/affinity airflow $(ARGS)

mlflow: $(STAMP)
	$(BIN)/affinity mlflow $(ARGS)

# The dashboard over the published snapshot: http://localhost:8501 (Ctrl-C stops).
dashboard: $(STAMP)
	$(BIN)/affinity dashboard $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf .affinity
