# The image every Airflow service and the MLflow server run (docker-compose.yml).
FROM python:3.11-slim-bookworm

# implicit links OpenMP; curl serves the health checks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/affinity
COPY requirements.txt pyproject.toml README.md ./
COPY ml ./ml
COPY plugins ./plugins
RUN pip install --no-cache-dir uv==0.13.9 \
    && uv pip install --system --no-cache -r requirements.txt
COPY dags ./dags
COPY dbt_project ./dbt_project

ENV AFFINITY_HOME=/affinity \
    AIRFLOW_HOME=/opt/airflow \
    OPENBLAS_NUM_THREADS=1 \
    AIRFLOW__COSMOS__ENABLE_TELEMETRY=False
