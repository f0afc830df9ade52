"""The reliability note's two tables: the defect corpus, and an erasure audit of a real run.

Usage::

    python bench/reliability_audit.py [--customers 300] [--keep DIR]

1. Ingests every case of the defect corpus (``tests/corpus``) into its own warehouse and
   tabulates what happened: kind of defect -> outcome (quarantined with its rule, loaded,
   or refused with its message) -> ``received = loaded + quarantined``.
2. Runs the declared pipeline twice on a generated shop (the reliability tests' child
   process, ``tests/test_reliability_support.py``): once as is, then with an
   ``erasure_requests`` file naming three customers who are in the recommendations, the
   affinity audiences and the serving model. Then it searches every store of the home for
   them (every table and view of every warehouse schema, the live and archived snapshots,
   every MLflow artifact file and database value, dbt's files) and counts what the erasure
   removed where.

Writes ``bench/results/reliability_audit.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import polars as pl

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests"))

from corpus.build import run_corpus, summary_table  # noqa: E402
from test_reliability_support import (  # noqa: E402
    AS_OF,
    index_map_files,
    index_map_ids,
    make_shop,
    run_stages,
    search_home,
    snapshot_path,
)

from bench._common import machine, now_utc, write_results  # noqa: E402


def corpus_audit(scratch: Path) -> tuple[list[dict], str]:
    results = run_corpus(scratch)
    rows = [
        {
            "kind": r.case.kind,
            "entity": r.case.entity,
            "outcome": r.outcome,
            "rules": r.rules,
            "received": r.received,
            "loaded": r.loaded,
            "quarantined": r.quarantined,
            "ok": r.ok,
        }
        for r in results
    ]
    return rows, summary_table(results)


def _erased_customers(home: Path) -> list[str]:
    con = duckdb.connect(str(snapshot_path(home)), read_only=True)
    try:
        audiences = {
            r[0] for r in con.execute("select customer_id from affinity_audiences").fetchall()
        }
        recommended = {
            r[0] for r in con.execute("select customer_id from recommendations").fetchall()
        }
    finally:
        con.close()
    in_model = set.union(*(index_map_ids(p) for p in index_map_files(home)))
    return sorted(audiences & recommended & in_model)[:3]


def erasure_audit(scratch: Path, customers: int) -> dict:
    home, landing = scratch / "home", make_shop(scratch / "landing", customers=customers)
    started = time.perf_counter()
    first = run_stages(home, landing, run_id="before-erasure")
    if not first.finished:
        raise RuntimeError(first.tail())
    erased = _erased_customers(home)
    customers_frame = pl.read_parquet(landing / "customers.parquet").filter(
        pl.col("customer_id").is_in(erased)
    )
    orders = pl.read_parquet(landing / "orders.parquet").filter(pl.col("customer_id").is_in(erased))
    needles = sorted(
        {*erased, *customers_frame["email"], *customers_frame["first_name"], *orders["order_id"]}
    )
    before = search_home(home, needles)
    (landing / "erasure_requests.csv").write_text(
        "customer_id,requested_at\n" + "".join(f"{c},{AS_OF} 08:00:00\n" for c in erased)
    )
    second = run_stages(home, landing, run_id="after-erasure")
    if not second.finished:
        raise RuntimeError(second.tail())
    after = search_home(home, needles)
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        removed = con.execute(
            "select entity, place, sum(erased_rows)::bigint from raw.erasure_audit "
            "where is_current group by all order by all"
        ).fetchall()
        kept = con.execute("select count(*) from raw.erasure_requests").fetchone()[0]
    finally:
        con.close()
    return {
        "customers_erased": len(erased),
        "needles": len(needles),
        "seconds": round(time.perf_counter() - started, 1),
        "raw_rows_erased": [{"entity": e, "place": p, "rows": n} for e, p, n in removed],
        "requests_kept": kept,
        "stores": {
            store: {
                "places": len(places),
                "existed_before": store in before,
                "holding_before": sorted(p for p, n in before.get(store, {}).items() if n),
                "holding_after": sorted(p for p, n in places.items() if n),
            }
            for store, places in after.items()
        },
    }


def markdown(result: dict, corpus_table: str) -> str:
    audit = result["erasure"]
    lines = [
        "# Reliability audit (issue 19)",
        "",
        f"Measured {result['measured_at']} on {result['machine']['nproc']} CPUs; "
        "`python bench/reliability_audit.py`.",
        "",
        "## Defect corpus: kind -> outcome -> received = loaded + quarantined",
        "",
        corpus_table,
        "",
        "## Erasure audit",
        "",
        f"{audit['customers_erased']} customers erased (in recommendations, affinity audiences "
        f"and the serving model before); searched for {audit['needles']} values that identify "
        "them (ids, e-mails, first names, their order ids). The request stays in "
        f"`raw.erasure_requests` ({audit['requests_kept']} rows: id and dates), the audit "
        "record, and is left out of the search with its staging view.",
        "",
        "| store | places searched | places holding them before | places holding them after |",
        "|---|---|---|---|",
    ]
    for store, found in audit["stores"].items():
        before = len(found["holding_before"]) if found["existed_before"] else "(not there yet)"
        lines.append(f"| {store} | {found['places']} | {before} | {len(found['holding_after'])} |")
    lines += [
        "",
        "Rows the erasure removed from `raw` (from `raw.erasure_audit`, which the load "
        "manifest's re-count adds back: received = loaded + quarantined still holds):",
        "",
        "| entity | place | rows |",
        "|---|---|---|",
        *[f"| {r['entity']} | {r['place']} | {r['rows']} |" for r in audit["raw_rows_erased"]],
        "",
        f"Two pipeline runs and the searches took {audit['seconds']}s.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=300, help="generated shop size")
    parser.add_argument("--keep", type=Path, help="keep the scenario's home here")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="affinity-reliability-audit-"))
    try:
        corpus_rows, corpus_table = corpus_audit(scratch / "corpus")
        result = {
            "measured_at": now_utc(),
            "machine": machine(duckdb=duckdb.__version__),
            "corpus": corpus_rows,
            "erasure": erasure_audit(scratch / "erasure", args.customers),
        }
        if args.keep:
            shutil.copytree(scratch / "erasure", args.keep, dirs_exist_ok=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    path = write_results("reliability_audit", result, markdown(result, corpus_table))
    print(path.with_suffix(".md").read_text())
    unexpected = [r["kind"] for r in result["corpus"] if not r["ok"]]
    leaks = {
        s: f["holding_after"] for s, f in result["erasure"]["stores"].items() if f["holding_after"]
    }
    return 1 if unexpected or leaks else 0


if __name__ == "__main__":
    sys.exit(main())
