"""The docker-compose deployment validates and carries no secrets."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml
from conftest import REPO_ROOT

SERVICES = {
    "postgres",
    "mlflow",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
}


@pytest.fixture(scope="module")
def compose_config() -> dict:
    if shutil.which("docker-compose") is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is missing: .ci/run installs Debian's docker-compose")
        pytest.skip("docker-compose not installed (apt-get install docker-compose)")
    result = subprocess.run(
        ["docker-compose", "--env-file", ".env.example", "-f", "docker-compose.yml", "config"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_file_validates_with_every_service(compose_config: dict) -> None:
    assert set(compose_config["services"]) == SERVICES


def test_long_running_services_have_health_checks(compose_config: dict) -> None:
    for name, service in compose_config["services"].items():
        if name != "airflow-init":
            assert "healthcheck" in service, name


def test_airflow_uses_postgres_and_the_built_image(compose_config: dict) -> None:
    for name in SERVICES - {"postgres"}:
        service = compose_config["services"][name]
        assert service["build"]["dockerfile"] == "Dockerfile", name
    env = compose_config["services"]["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AFFINITY_MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


def test_no_secret_is_written_in_the_repository() -> None:
    compose = (REPO_ROOT / "docker-compose.yml").read_text()
    # Every secret is interpolated from the environment / .env, never written inline.
    for key in ("POSTGRES_PASSWORD", "FERNET_KEY", "JWT_SECRET", "PII_SALT"):
        for line in compose.splitlines():
            name, _, value = line.partition(":")
            if key in name and value.strip():
                assert "${" in value, line
    tracked = subprocess.run(
        ["git", "ls-files", ".env"], cwd=REPO_ROOT, capture_output=True, text=True
    ).stdout
    assert tracked == ""
    # The committed example holds placeholders only.
    example = dict(
        line.split("=", 1)
        for line in (REPO_ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    for key in (
        "POSTGRES_PASSWORD",
        "AIRFLOW_FERNET_KEY",
        "AIRFLOW_JWT_SECRET",
        "AFFINITY_PII_SALT",
    ):
        assert example[key] == "change-me", key
