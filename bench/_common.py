"""Helpers every benchmark shares: peak memory, the machine, and writing results."""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def peak_rss_mb() -> dict[str, float]:
    """Peak resident set size of this process and of its (waited-for) children, in MB."""
    to_mb = 1 / 1024 if sys.platform != "darwin" else 1 / 1024**2  # Linux reports KiB
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * to_mb
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * to_mb
    return {"self": round(own, 1), "children": round(children, 1)}


def machine(**versions: str) -> dict[str, object]:
    """What the figures were measured on (plus the library versions passed in)."""
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {
        "nproc": os.cpu_count(),
        "ram_gb": round(pages / 1024**3, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        **versions,
    }


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def write_results(name: str, result: dict, markdown: str) -> Path:
    """Write ``bench/results/<name>.json`` and ``.md``; return the JSON path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS_DIR / f"{name}.md").write_text(markdown)
    return path
