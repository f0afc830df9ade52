"""No credentials in the repository; secrets come from the environment or ``.env``.

Scans every file git would commit (tracked, or untracked and not ignored) for the shapes of
real credentials. Related checks live elsewhere and are not repeated here:
``tests/test_deploy.py`` (docker-compose interpolates every secret from ``.env``, ``.env`` is
not tracked, ``.env.example`` holds placeholders only) and ``tests/test_dbt_project.py``
(``test_prod_target_requires_the_salt``: the dbt prod target stops with a clear error when
``AFFINITY_PII_SALT`` is missing).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# Shapes of real credentials (a hit is a leak whatever the variable is called).
CREDENTIAL_PATTERNS = {
    "private key": r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY",
    "AWS access key id": r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    "GitHub token": r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})",
    "Slack token": r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
    "Google API key": r"\bAIza[0-9A-Za-z_-]{35}\b",
    "Stripe live key": r"\b[sr]k_live_[0-9a-zA-Z]{20,}",
    "JSON web token": r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}",
    "Fernet key": r"(?i)fernet[_a-z]*\s*[:=]\s*['\"]?[A-Za-z0-9_-]{43}=",
}
# `name = "value"` where the name says secret and the value is a literal, not a reference.
ASSIGNED_SECRET = re.compile(
    r"(?i)\b[a-z_]*(?:password|passwd|secret|token|api_?key|pii_salt)[a-z_]*\s*[:=]\s*"
    r"['\"]([^'\"\s]{8,})['\"]"
)
# URLs with an inline password that is not interpolated (`${...}`).
URL_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:([^/\s@'\"]+)@")
# Literal values that are documented placeholders or non-secrets, never real credentials.
PLACEHOLDERS = re.compile(r"(?i)change-?me|not-secret|example|placeholder|dummy|\$\{|\{\{|xxx")


def committed_files() -> list[Path]:
    """Files git tracks or would add (untracked and not ignored), read-only git use."""
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [
        REPO_ROOT / name for name in listed.split("\0") if name and (REPO_ROOT / name).is_file()
    ]


def secret_findings(path: Path, text: str) -> list[str]:
    """What in one file's text looks like a credential."""
    found = []
    for kind, pattern in CREDENTIAL_PATTERNS.items():
        for match in re.finditer(pattern, text):
            found.append(f"{path}: {kind} {match.group(0)[:20]}...")
    for regex in (ASSIGNED_SECRET, URL_CREDENTIALS):
        for match in regex.finditer(text):
            if not PLACEHOLDERS.search(match.group(1)):
                found.append(f"{path}: literal secret in {match.group(0)[:60]!r}")
    return found


def test_no_credentials_in_any_committed_file() -> None:
    files = committed_files()
    assert len(files) > 50
    this_file = Path(__file__).resolve()
    findings = []
    for path in files:
        if path.resolve() == this_file:  # the patterns themselves
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary files: no text credentials
        findings += secret_findings(path.relative_to(REPO_ROOT), text)
    assert findings == []


def test_the_scanner_recognises_credentials() -> None:
    # Built at run time, so this file holds no credential-shaped literal itself.
    samples = {
        "private key": "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIE",
        "AWS access key id": "key = AKIA" + "ABCDEFGHIJKLMNOP",
        "GitHub token": "ghp_" + "a" * 36,
        "literal secret": 'POSTGRES_PASSWORD: "' + "hunter2hunter2" + '"',
        "inline URL password": "postgresql://airflow:" + "s3cr3tpass" + "@db/airflow",
    }
    for kind, text in samples.items():
        assert secret_findings(Path("sample"), text), kind
    for harmless in (
        'POSTGRES_PASSWORD: "${POSTGRES_PASSWORD}"',
        "postgresql+psycopg2://${POSTGRES_USER}:${POSTGRES_PASSWORD}@postgres/airflow",
        "AFFINITY_PII_SALT=change-me",
        "salt = 'affinity-dev-salt-not-secret'",
    ):
        assert secret_findings(Path("sample"), harmless) == [], harmless


def test_local_state_and_secrets_files_are_ignored_by_git() -> None:
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for path in (".env", ".affinity/airflow/simple_auth_manager_passwords.json.generated"):
        ignored = subprocess.run(
            ["git", "check-ignore", "--quiet", "--no-index", path], cwd=REPO_ROOT
        )
        assert ignored.returncode == 0, f"{path} is not git-ignored"
