"""``affinity dashboard``: serve the Streamlit app on the published snapshot.

Streamlit's server options are fixed here for a local, offline, read-only dashboard:
headless (no browser is opened), no usage statistics sent, no file watching (the app's
source does not change under it), bound to 127.0.0.1 unless a host is given.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from ml.config import paths

log = logging.getLogger(__name__)

APP = Path(__file__).with_name("app.py")
DEFAULT_PORT = 8501


def streamlit_command(port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> list[str]:
    """The ``streamlit run`` command line of the dashboard."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.headless=true",
        f"--server.port={port}",
        f"--server.address={host}",
        "--server.fileWatcherType=none",
        "--server.runOnSave=false",
        "--browser.gatherUsageStats=false",
        "--client.toolbarMode=minimal",
        "--client.showErrorDetails=full",
        "--global.developmentMode=false",
        "--theme.base=light",
    ]


def serve_dashboard(port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> int:
    """Run the dashboard server until asked to stop (Ctrl-C, SIGINT/SIGTERM, or to make).

    Returns
    -------
    int
        The server's exit status (0 after a requested stop).
    """
    from ml.orchestration.supervise import run_until_stopped

    home = paths()
    log.info(
        "Affinity dashboard on http://%s:%d over %s (read-only)",
        "localhost" if host == "127.0.0.1" else host,
        port,
        home.snapshot,
    )
    env = {**os.environ, "AFFINITY_HOME": str(home.home)}
    return run_until_stopped(streamlit_command(port, host), env)
