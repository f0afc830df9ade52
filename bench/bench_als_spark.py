"""Benchmark our ALS (``implicit``) against Spark MLlib ALS on the same interaction matrix.

Usage::

    bench/.venv-spark/bin/python bench/bench_als_spark.py --home DIR     # a built AFFINITY_HOME
    bench/.venv-spark/bin/python bench/bench_als_spark.py --scale 1m     # generate + build one
    python bench/bench_als_spark.py --setup    # create bench/.venv-spark from requirements-spark.txt

One run, one matrix, one set of hyperparameters (rank 64, 15 iterations, the same
regularization value and confidence ``c = 1 + alpha * r``, implicit preferences, Spark
``local[2]`` with native OpenBLAS), in five steps, each its own process so each has its own
peak RSS and nothing competes for the two cores:

1. ``prepare`` (main ``.venv``): the product's path -- ``load_events`` from the DuckDB mart,
   ``build_training_data`` before the test window, ``build_evaluation_window`` -- writes the
   matrix (Parquet for Spark, ``.npz`` for implicit) and the held-out purchases. The held-out
   window's customers are split in two by a hash of their id: *validation* customers (for
   stopping) and *test* customers (every reported NDCG@10 / HR@10).
2. ``spark`` (this venv): Spark MLlib ALS fit, timed around ``ALS.fit`` (input cached first);
   peak RSS of the JVM (``VmHWM``) and of the Python driver; factors written to ``.npz``.
3. ``implicit-fit`` (main ``.venv``): implicit ALS with the same settings, 15 iterations,
   1 thread (the product's setting) and 2 threads (the cores Spark gets).
4. ``evaluate`` (main ``.venv``): both models' top-10 with the same code (``implicit``'s
   top-k, products bought in training filtered) against the same held-out purchases.
5. ``ttq`` (main ``.venv``): time to quality -- our training step from scratch: load the
   interactions from DuckDB, build the CSR, fit with a per-iteration callback that scores
   NDCG@10 on the validation customers and stops as soon as it reaches Spark's NDCG@10 on
   the same customers (rule ``target``), or when it stops improving (rule ``converge``).
   Issue 20 adds rows (``--ttq-variants``, see ``parse_variant``): an exact (Cholesky) last
   iteration (``:exact1``), other regularizations (``reg<X>``), the validation-noise fix
   (``target_se``: Spark's validation NDCG@10 plus one standard error; ``valall``: every
   validation customer), and ``sweep:fixed``: a regularization sweep off the clock
   (``sweep`` role, all validation customers) picks the cheapest schedule at Spark's
   validation NDCG@10 + 1 SE, which then runs timed with no validation on the clock.

Writes ``bench/results/als_spark_<scale>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench._common import machine, now_utc, peak_rss_mb, write_results  # noqa: E402

MAIN_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
SPARK_VENV = REPO_ROOT / "bench" / ".venv-spark"
SPARK_REQUIREMENTS = REPO_ROOT / "bench" / "requirements-spark.txt"
OPENBLAS_DIRS = (
    "/usr/lib/x86_64-linux-gnu/openblas-pthread",
    "/usr/lib/aarch64-linux-gnu/openblas-pthread",
    "/usr/lib/x86_64-linux-gnu/openblas-openmp",
    "/usr/lib/x86_64-linux-gnu/openblas-serial",
)
# Same sizes as bench/bench_generate.py (not imported: this venv has no polars).
SCALES = {
    "1m": {"customers": 50_000, "products": 5_000, "days": 90},
    "10m": {"customers": 500_000, "products": 50_000, "days": 90},
}
SHOP_END = "2026-10-31"  # ml.config.DEFAULT_SHOP_END
K = 10


# --------------------------------------------------------------------------- helpers


def vm_hwm_mb(pid: int | str = "self") -> float | None:
    """Peak RSS (``VmHWM``) of a live process, in MB, from ``/proc``."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def cpu_seconds(pid: int | str = "self") -> float | None:
    """User + system CPU seconds a live process has used so far (``/proc/<pid>/stat``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_hwm(pid: int | str = "self") -> None:
    """Reset a process's ``VmHWM`` to its current RSS (Linux >= 4.0; best effort)."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def descendants(pid: int) -> list[int]:
    """Pids of every live descendant of ``pid`` (from ``/proc``)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def hash_half(customer_ids) -> list[bool]:
    """True for validation customers: a stable hash of the id (crc32, even), else test."""
    return [zlib.crc32(str(c).encode()) % 2 == 0 for c in customer_ids]


def java_version() -> str:
    out = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    return out.splitlines()[0] if out else "unknown"


def find_openblas() -> str | None:
    for directory in OPENBLAS_DIRS:
        if Path(directory, "libblas.so.3").exists():
            return directory
    return None


def run_role(python: Path, role: str, args: list[str], env: dict | None = None) -> dict:
    """Run this script in another interpreter with ``--role``; return its JSON answer."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        answer = Path(handle.name)
    command = [str(python), str(Path(__file__).resolve()), "--role", role, "--answer", str(answer)]
    command += args
    print(f"[bench_als_spark] {role}: {' '.join(command[2:])}", flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, **(env or {})})
    result = json.loads(answer.read_text())
    answer.unlink()
    result["process_seconds"] = round(time.perf_counter() - started, 2)
    return result


# --------------------------------------------------------------------------- main venv roles


def _main_venv_imports():
    """Limit BLAS threads the way the product does (implicit wants single-threaded BLAS)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _recipe(args):
    from ml.train.config import Recipe

    return Recipe()  # the product's weighting (TUNED_WEIGHTING); hyperparameters come from args


def _as_of(warehouse: Path, as_of: str | None):
    from datetime import timedelta

    import duckdb

    from ml.dates import day_start

    if as_of:
        return day_start(as_of)
    con = duckdb.connect(str(warehouse), read_only=True)
    latest = con.sql("SELECT max(occurred_at) FROM marts.interaction_events").fetchall()[0][0]
    con.close()
    return day_start(latest) + timedelta(days=1)


def _save_csr(prefix: str, matrix, out: dict) -> None:
    out[f"{prefix}_indptr"] = matrix.indptr
    out[f"{prefix}_indices"] = matrix.indices
    out[f"{prefix}_data"] = matrix.data
    out[f"{prefix}_shape"] = matrix.shape


def _load_csr(prefix: str, arrays):
    import scipy.sparse as sp

    return sp.csr_matrix(
        (arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]),
        shape=tuple(arrays[f"{prefix}_shape"]),
    )


def _validation_rows(customer_ids, rows, cap: int, seed: int):
    """Split evaluated ``rows`` into (validation sample of at most ``cap``, test rows).

    ``cap`` 0 keeps every validation customer (the whole hash half).
    """
    import numpy as np

    is_val = np.array(hash_half(customer_ids[rows]), dtype=bool)
    val_rows, test_rows = rows[is_val], rows[~is_val]
    if cap and len(val_rows) > cap:
        pick = np.random.default_rng(seed).choice(len(val_rows), cap, replace=False)
        val_rows = np.sort(val_rows[pick])
    return val_rows, test_rows


def role_prepare(args) -> dict:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    _limits = _main_venv_imports()  # noqa: F841
    from ml.train.history import build_training_data
    from ml.train.interactions import load_events
    from ml.train.split import TimeSplit, build_evaluation_window

    warehouse = Path(args.home) / "warehouse.duckdb"
    as_of = _as_of(warehouse, args.as_of)
    split = TimeSplit.from_as_of(as_of, args.eval_days, args.eval_days)
    recipe = _recipe(args)
    work = Path(args.work)
    started = time.perf_counter()
    events = load_events(split.history_end, warehouse)
    load_s = time.perf_counter() - started
    training = build_training_data(events, split.test_start, recipe.weighting)
    window = build_evaluation_window(events, training, split.as_of)
    build_s = time.perf_counter() - started - load_s
    val_rows, test_rows = _validation_rows(
        training.maps.customer_ids, window.customer_rows, args.val_customers, args.seed
    )
    strength = training.strength.tocoo()
    pq.write_table(
        pa.table(
            {
                "user": strength.row.astype(np.int32),
                "item": strength.col.astype(np.int32),
                "rating": strength.data.astype(np.float32),
            }
        ),
        work / "ratings.parquet",
    )
    val_all_rows, _ = _validation_rows(training.maps.customer_ids, window.customer_rows, 0, 0)
    arrays: dict = {"val_rows": val_rows, "val_all_rows": val_all_rows, "test_rows": test_rows}
    _save_csr("strength", training.strength, arrays)
    _save_csr("bought", training.bought, arrays)
    _save_csr("truth", window.truth, arrays)
    arrays["customer_ids"] = training.maps.customer_ids.astype(str)
    np.savez(work / "data.npz", **arrays)
    data = training.strength.data
    return {
        "as_of": as_of.date().isoformat(),
        "train_window": f"[first event, {split.test_start.date()})",
        "heldout_window": f"[{split.test_start.date()}, {split.as_of.date()})",
        "events_before_cutoff": training.n_events,
        "shape": list(training.strength.shape),
        "nnz": int(training.strength.nnz),
        "density": float(training.strength.nnz / np.prod(training.strength.shape)),
        "strength_quantiles": {
            q: float(np.quantile(data, float(q))) for q in ("0.1", "0.5", "0.9", "0.99")
        },
        "heldout_customers": int(len(window.customer_rows)),
        "heldout_purchases": int(window.truth.nnz),
        "validation_customers": int(len(val_rows)),
        "validation_customers_all": int(len(val_all_rows)),
        "test_customers": int(len(test_rows)),
        "product_path_seconds": {
            "load_events": round(load_s, 2),
            "build_training_data_and_window": round(build_s, 2),
        },
        "weighting": dict(vars(recipe.weighting)),
        "peak_rss_mb": peak_rss_mb()["self"],
    }


def _fit_callback(model, log: list, evaluate=None):
    def callback(iteration, elapsed, loss):
        entry = {"iteration": iteration + 1, "seconds": round(elapsed, 3)}
        if evaluate is not None:
            entry.update(evaluate(iteration + 1))
        log.append(entry)

    return callback


def _top_k(user_factors, item_factors, rows, bought, threads: int):
    """Top-K product columns of ``rows`` (products bought in training filtered out).

    implicit's top-k multiplies with numpy (BLAS) and selects in C++: the BLAS thread limit
    of the fit (1) is lifted to ``threads`` for the multiplication.
    """
    from implicit.cpu.topk import topk
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        ids, _ = topk(
            item_factors,
            user_factors[rows],
            K,
            filter_query_items=bought[rows],
            num_threads=threads,
        )
    return ids


def _rank_metrics(recommended, truth_rows) -> dict:
    import numpy as np

    from ml.train import metrics

    recommended = np.where(recommended < 0, -1, recommended)
    per = metrics.per_customer_metrics(recommended, truth_rows, (K,))
    hit = metrics.hits(recommended[:, :K], truth_rows).any(axis=1)
    ndcg = per["ndcg_at_10"]
    return {
        "ndcg_at_10": float(np.nanmean(ndcg)),
        # standard error of the mean NDCG@10 over customers (for the target_se stop rule)
        "ndcg_at_10_se": float(np.nanstd(ndcg, ddof=1) / np.sqrt(max(np.isfinite(ndcg).sum(), 1))),
        "hr_at_10": float(hit.mean()),
        "recall_at_10": float(np.nanmean(per["recall_at_10"])),
        "precision_at_10": float(np.nanmean(per["precision_at_10"])),
        "customers": int(len(recommended)),
    }


def _evaluate_factors(
    user_factors, item_factors, arrays, bought, truth, threads: int, names=("val_rows", "test_rows")
) -> dict:
    out = {}
    for name in names:
        rows = arrays[name]
        ids = _top_k(user_factors, item_factors, rows, bought, threads)
        out[name.replace("_rows", "")] = _rank_metrics(ids, truth[rows])
    return out


def _confidence(strength, alpha: float):
    """Spark's implicit confidence ``c = 1 + alpha * r`` as implicit's matrix (implicit uses
    the cell value itself as ``c``)."""
    import numpy as np

    matrix = strength.astype(np.float32, copy=True)
    matrix.data = (1.0 + alpha * matrix.data).astype(np.float32)
    return matrix


def _new_als(args, threads: int, iterations: int):
    from implicit.cpu.als import AlternatingLeastSquares

    return AlternatingLeastSquares(
        factors=args.rank,
        regularization=args.regularization,
        alpha=1.0,
        iterations=iterations,
        num_threads=threads,
        random_state=args.seed,
        calculate_training_loss=False,
    )


def role_implicit_fit(args) -> dict:
    import numpy as np

    _main_venv_imports()
    import implicit

    arrays = np.load(Path(args.work) / "data.npz")
    strength = _load_csr("strength", arrays)
    bought, truth = _load_csr("bought", arrays), _load_csr("truth", arrays)
    confidence = _confidence(strength, args.alpha)
    rss_before_fit = peak_rss_mb()["self"]
    reset_hwm()
    model = _new_als(args, args.threads, args.iterations)
    log: list = []
    started, cpu_started = time.perf_counter(), time.process_time()
    model.fit(confidence, show_progress=False, callback=_fit_callback(model, log))
    fit_s = time.perf_counter() - started
    fit_cpu = time.process_time() - cpu_started
    fit_hwm = vm_hwm_mb()
    quality = _evaluate_factors(
        model.user_factors, model.item_factors, arrays, bought, truth, args.threads
    )
    return {
        "implicit": implicit.__version__,
        "threads": args.threads,
        "fit_seconds": round(fit_s, 2),
        "fit_cpu_seconds": round(fit_cpu, 2),
        "seconds_per_iteration": round(fit_s / args.iterations, 3),
        "loadavg_after_fit": os.getloadavg(),
        "iterations": log,
        "quality": quality,
        "peak_rss_mb": {
            "process": peak_rss_mb()["self"],
            "before_fit": rss_before_fit,
            "during_fit": fit_hwm,
        },
    }


def role_evaluate(args) -> dict:
    """Score Spark's factors with exactly the code that scores implicit's."""
    import numpy as np

    _main_venv_imports()
    arrays = np.load(Path(args.work) / "data.npz")
    bought, truth = _load_csr("bought", arrays), _load_csr("truth", arrays)
    factors = np.load(Path(args.work) / "spark_factors.npz")
    return {
        "quality": _evaluate_factors(
            factors["user_factors"],
            factors["item_factors"],
            arrays,
            bought,
            truth,
            2,
            ("val_rows", "val_all_rows", "test_rows"),
        )
    }


def _fast_matrix(con, weighting, cutoff, window_end, alpha: float):
    """Our training matrix straight from DuckDB: aggregation, index maps and CSR order are
    done in SQL (integer codes, float32), numpy only wraps the arrays.

    Same result as ``build_training_data`` (checked by ``ttq``): strength per pair with the
    weighting's kind weights, quantity transform, recency decay and repeat exponent; rows
    and columns are the sorted customer and product ids of the pairs with strength > 0.
    """
    import math

    import numpy as np
    import scipy.sparse as sp

    quantity = "greatest(coalesce(quantity, 1), 0)::DOUBLE"
    factor = {
        "log1p": f"ln(1 + {quantity})",
        "sqrt": f"sqrt({quantity})",
        "one": "1.0",
        "linear": quantity,
    }[weighting.purchase_quantity]
    weights = weighting.kind_weights()
    kind = (
        "CASE event_kind "
        + " ".join(f"WHEN '{name}' THEN {float(w)!r}" for name, w in weights.items())
        + " ELSE 0.0 END"
    )
    if weighting.half_life_days is None:
        decay = "1.0"
    else:
        decay = (
            f"exp({-math.log(2.0) / weighting.half_life_days!r} * "
            "(epoch_us($cutoff) - epoch_us(occurred_at)) / 86400e6)"
        )
    strength = "sum(w)"
    if weighting.repeat_exponent != 1.0:
        strength = f"pow(sum(w), {weighting.repeat_exponent!r})"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE pairs AS
        SELECT customer_id, product_id, {strength} AS strength,
               count(*) FILTER (WHERE event_kind = 'purchase') AS purchases
        FROM (
            SELECT customer_id, product_id, event_kind,
                   {kind} * (CASE WHEN event_kind = 'purchase' THEN {factor} ELSE 1.0 END)
                   * {decay} AS w
            FROM marts.interaction_events WHERE occurred_at < $cutoff
        )
        GROUP BY customer_id, product_id
        HAVING {strength} > 0
        """,
        {"cutoff": cutoff},
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE cmap AS
        SELECT customer_id, (row_number() OVER (ORDER BY customer_id) - 1)::INTEGER AS r
        FROM (SELECT DISTINCT customer_id FROM pairs);
        CREATE OR REPLACE TEMP TABLE pmap AS
        SELECT product_id, (row_number() OVER (ORDER BY product_id) - 1)::INTEGER AS c
        FROM (SELECT DISTINCT product_id FROM pairs);
        """
    )
    n_rows = con.sql("SELECT count(*) FROM cmap").fetchall()[0][0]
    n_cols = con.sql("SELECT count(*) FROM pmap").fetchall()[0][0]
    cells = con.sql(
        f"""
        SELECT r, c, (1 + {alpha!r} * strength)::FLOAT AS conf, purchases > 0 AS bought
        FROM pairs JOIN cmap USING (customer_id) JOIN pmap USING (product_id)
        ORDER BY r, c
        """
    ).fetchnumpy()
    rows = cells["r"].astype(np.int64)
    indptr = np.zeros(n_rows + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    cols = cells["c"].astype(np.int32)
    confidence = sp.csr_matrix((cells["conf"], cols, indptr), shape=(n_rows, n_cols))
    mask = cells["bought"].astype(bool)
    b_indptr = np.zeros(n_rows + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows[mask], minlength=n_rows), out=b_indptr[1:])
    bought = sp.csr_matrix(
        (np.ones(int(mask.sum()), np.float32), cols[mask], b_indptr), shape=(n_rows, n_cols)
    )
    # Held-out purchases new to the customer (build_evaluation_window's truth).
    truth_cells = con.sql(
        """
        SELECT DISTINCT r, c FROM marts.interaction_events e
        JOIN cmap USING (customer_id) JOIN pmap USING (product_id)
        WHERE e.event_kind = 'purchase' AND e.occurred_at >= $start AND e.occurred_at < $end
          AND NOT EXISTS (SELECT 1 FROM pairs p WHERE p.customer_id = e.customer_id
                          AND p.product_id = e.product_id AND p.purchases > 0)
        """,
        params={"start": cutoff, "end": window_end},
    ).fetchnumpy()
    truth = sp.csr_matrix(
        (np.ones(len(truth_cells["r"]), np.float32), (truth_cells["r"], truth_cells["c"])),
        shape=(n_rows, n_cols),
    )
    return confidence, bought, truth


class _Stop(Exception):
    """Raised from the fit callback to end the fit early."""


def _exact_sweep(model, confidence, transposed, threads: int) -> None:
    """One ALS iteration with implicit's exact (Cholesky) solver, in place: users, then items.

    implicit binds its solver once per ``fit``, so a change of solver between iterations is
    this: the same least-squares update ``fit`` runs, with ``use_cg=False``.
    """
    from implicit.cpu import _als

    _als.least_squares(
        confidence, model.user_factors, model.item_factors, model.regularization, threads
    )
    _als.least_squares(
        transposed, model.item_factors, model.user_factors, model.regularization, threads
    )


def _ttq_model(args, iterations: int):
    model = _new_als(args, args.threads, iterations)
    model.cg_steps = args.cg_steps
    model.use_cg = args.solver == "cg"
    return model


def role_ttq(args) -> dict:
    """Time to quality: load from DuckDB + build the CSR + fit with validation stopping.

    Rules: ``target`` stops at Spark's validation NDCG@10 (or on convergence), ``target_se``
    at Spark's validation NDCG@10 plus one standard error of it, ``converge`` when the
    validation NDCG@10 stops improving, ``fixed`` runs ``--iterations`` with no validation on
    the clock (a schedule chosen beforehand on the validation customers). ``--finish-exact K``
    adds K exact-solve iterations after the stop.
    """
    import duckdb
    import numpy as np

    _main_venv_imports()
    import implicit  # noqa: F401  (import cost is not part of a training step)

    from ml.train import metrics  # noqa: F401  (imported before the clock, like implicit)
    from ml.train.split import TimeSplit

    target_val_ndcg = args.target_ndcg + (args.target_se if args.rule == "target_se" else 0.0)
    warehouse = Path(args.home) / "warehouse.duckdb"
    recipe = _recipe(args)
    clock, cpu_clock = time.perf_counter(), time.process_time()
    paused = 0.0  # measurement-only work (test-set scoring) excluded from the clock
    marks: dict[str, float] = {}

    as_of = _as_of(warehouse, args.as_of)
    split = TimeSplit.from_as_of(as_of, args.eval_days, args.eval_days)
    con = duckdb.connect(str(warehouse), read_only=True)
    con.execute(f"SET threads = {args.threads}")
    confidence, bought, truth = _fast_matrix(
        con, recipe.weighting, split.test_start, split.as_of, args.alpha
    )
    customer_ids = con.sql("SELECT customer_id FROM cmap ORDER BY r").fetchnumpy()["customer_id"]
    con.close()
    eval_rows = np.flatnonzero(np.diff(truth.indptr) > 0)
    val_rows, test_rows = _validation_rows(
        np.asarray(customer_ids).astype(str), eval_rows, args.val_customers, args.seed
    )
    marks["load_and_build"] = time.perf_counter() - clock

    model = _ttq_model(args, args.iterations)
    log: list = []
    state = {"best": -1.0, "stale": 0, "stopped_by": None}
    validate_on_clock = args.rule != "fixed"

    def score(stage: str, iteration: int, fit_seconds: float) -> float:
        """Validation (on the clock unless ``fixed``) and test (off the clock) NDCG@10."""
        nonlocal paused
        now = time.perf_counter()
        val_ids = _top_k(model.user_factors, model.item_factors, val_rows, bought, args.threads)
        val = _rank_metrics(val_ids, truth[val_rows])
        scored = time.perf_counter()
        # the clock of our training step so far (validation counts unless rule ``fixed``)
        elapsed_total = (scored if validate_on_clock else now) - clock - paused
        if not validate_on_clock:
            paused += scored - now
        test_ids = _top_k(model.user_factors, model.item_factors, test_rows, bought, 2)
        test = _rank_metrics(test_ids, truth[test_rows])
        paused += time.perf_counter() - scored  # measurement only: off the clock
        log.append(
            {
                "iteration": iteration,
                "solver": stage,
                "fit_seconds": round(fit_seconds, 3),
                "validation_eval_seconds": round(scored - now, 3),
                "elapsed_seconds": round(elapsed_total, 3),
                "val_ndcg_at_10": round(val["ndcg_at_10"], 5),
                "val_ndcg_at_10_se": round(val["ndcg_at_10_se"], 5),
                "test_ndcg_at_10": round(test["ndcg_at_10"], 5),
                "test_hr_at_10": round(test["hr_at_10"], 5),
            }
        )
        return val["ndcg_at_10"]

    stage = f"cg{args.cg_steps}" if args.solver == "cg" else "cholesky"

    def on_iteration(iteration, elapsed, loss):
        value = score(stage, iteration + 1, elapsed)
        if args.rule == "fixed":
            return
        if args.rule in ("target", "target_se") and value >= target_val_ndcg:
            state["stopped_by"] = f"reached the {args.rule} validation NDCG@10"
            raise _Stop
        if value > state["best"] * (1 + args.min_gain):
            state["best"], state["stale"] = value, 0
        else:
            state["stale"] += 1
            if state["stale"] >= args.patience:
                state["stopped_by"] = (
                    f"no validation gain >= {args.min_gain:.1%} for {args.patience} iterations"
                )
                raise _Stop

    try:
        model.fit(confidence, show_progress=False, callback=on_iteration)
        state["stopped_by"] = state["stopped_by"] or f"max iterations ({args.iterations})"
    except _Stop:
        pass
    if args.finish_exact:
        started = time.perf_counter()
        transposed = confidence.T.tocsr()
        for _ in range(args.finish_exact):
            _exact_sweep(model, confidence, transposed, args.threads)
            fit_s = time.perf_counter() - started
            validate_on_clock = False  # nothing left to decide: scoring is measurement only
            score("exact", len(log) + 1, fit_s)
            started = time.perf_counter()
    total = time.perf_counter() - clock - paused
    cpu_total = time.process_time() - cpu_clock  # includes the (off-clock) test scoring
    # Checks (outside the clock): the fast path built the product's matrix.
    check = {}
    if args.work and (Path(args.work) / "data.npz").exists():
        arrays = np.load(Path(args.work) / "data.npz")
        reference = _confidence(_load_csr("strength", arrays), args.alpha)
        val_key = "val_rows" if args.val_customers else "val_all_rows"
        check = {
            "same_shape": reference.shape == confidence.shape,
            "same_pattern": bool(
                reference.shape == confidence.shape
                and np.array_equal(reference.indptr, confidence.indptr)
                and np.array_equal(reference.indices, confidence.indices)
            ),
            "max_abs_value_diff": float(np.abs(reference.data - confidence.data).max())
            if reference.nnz == confidence.nnz
            else None,
            "same_truth": bool((_load_csr("truth", arrays) != truth).nnz == 0),
            "same_validation_rows": bool(np.array_equal(arrays[val_key], val_rows)),
            "same_test_rows": bool(np.array_equal(arrays["test_rows"], test_rows)),
        }
    last = log[-1] if log else {}
    return {
        "rule": args.rule,
        "solver": stage,
        "finish_exact": args.finish_exact,
        "threads": args.threads,
        "validation_customers": int(len(val_rows)),
        "target_val_ndcg_at_10": target_val_ndcg,
        "stopped_by": state["stopped_by"],
        "iterations_run": len(log),
        "seconds": round(total, 2),
        "cpu_seconds_including_test_scoring": round(cpu_total, 2),
        "loadavg_at_end": os.getloadavg(),
        "load_and_build_seconds": round(marks["load_and_build"], 2),
        "fit_and_validation_seconds": round(total - marks["load_and_build"], 2),
        "test_scoring_seconds_excluded": round(paused, 2),
        "final": last,
        "trajectory": log,
        "matrix": {"shape": list(confidence.shape), "nnz": int(confidence.nnz)},
        "fast_path_check": check,
        "peak_rss_mb": peak_rss_mb()["self"],
    }


def role_sweep(args) -> dict:
    """Off the clock: one regularization's CG trajectory on the prepared matrix, scored on
    every validation customer after each iteration, with and without one exact-solve
    iteration on top (``--finish-exact``); test NDCG@10 recorded, never used to choose."""
    import numpy as np

    _main_venv_imports()
    arrays = np.load(Path(args.work) / "data.npz")
    confidence = _confidence(_load_csr("strength", arrays), args.alpha)
    transposed = confidence.T.tocsr()
    bought, truth = _load_csr("bought", arrays), _load_csr("truth", arrays)
    model = _ttq_model(args, args.iterations)
    names = ("val_all_rows", "test_rows") if args.sweep_test else ("val_all_rows",)
    log: list = []

    def on_iteration(iteration, elapsed, loss):
        entry = {"iteration": iteration + 1, "fit_seconds": round(elapsed, 3)}
        started = time.perf_counter()
        quality = _evaluate_factors(
            model.user_factors, model.item_factors, arrays, bought, truth, args.threads, names
        )
        entry["eval_seconds"] = round(time.perf_counter() - started, 3)
        entry["cg"] = {k: round(v["ndcg_at_10"], 5) for k, v in quality.items()}
        if args.finish_exact and iteration + 1 >= args.min_iterations:
            saved = model.user_factors.copy(), model.item_factors.copy()
            started = time.perf_counter()
            for _ in range(args.finish_exact):
                _exact_sweep(model, confidence, transposed, args.threads)
            entry["exact_seconds"] = round(time.perf_counter() - started, 3)
            quality = _evaluate_factors(
                model.user_factors, model.item_factors, arrays, bought, truth, args.threads, names
            )
            entry[f"plus_exact{args.finish_exact}"] = {
                k: round(v["ndcg_at_10"], 5) for k, v in quality.items()
            }
            model.user_factors[:], model.item_factors[:] = saved
        log.append(entry)

    model.fit(confidence, show_progress=False, callback=on_iteration)
    return {
        "regularization": args.regularization,
        "solver": f"cg{args.cg_steps}" if args.solver == "cg" else "cholesky",
        "finish_exact": args.finish_exact,
        "validation_customers": int(len(arrays["val_all_rows"])),
        "loadavg_at_end": os.getloadavg(),
        "trajectory": log,
    }


# --------------------------------------------------------------------------- spark role


def _java_pids() -> list[int]:
    """The JVM(s) this process started (pyspark's gateway runs ``java`` as a child)."""
    found = []
    for pid in descendants(os.getpid()):
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/comm").read_text().strip() == "java":
                found.append(pid)
    return found


def role_spark(args) -> dict:
    import numpy as np
    import pyspark
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import SparkSession

    work = Path(args.work)
    checkpoints = work / "spark_checkpoints"
    checkpoints.mkdir(exist_ok=True)
    conf = (
        SparkSession.builder.master("local[2]")
        .appName("affinity-bench-als")
        .config("spark.driver.memory", args.spark_driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.local.dir", str(work / "spark_local"))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    if args.spark_blas == "java":
        # Point netlib at a library that does not exist: it falls back to its Java BLAS.
        opts = (
            "-Ddev.ludovic.netlib.blas.nativeLib=libnone.so "
            "-Ddev.ludovic.netlib.lapack.nativeLib=libnone.so"
        )
        conf = conf.config("spark.driver.extraJavaOptions", opts)
    started = time.perf_counter()
    spark = conf.getOrCreate()
    startup_s = time.perf_counter() - started
    spark.sparkContext.setLogLevel("WARN")
    spark.sparkContext.setCheckpointDir(str(checkpoints))
    jvm = spark.sparkContext._jvm

    def impl(expr):
        try:
            return expr().getClass().getName()
        except Exception as error:  # noqa: BLE001 - recorded, not fatal
            return f"unavailable ({type(error).__name__})"

    blas = {
        "blas": impl(lambda: jvm.dev.ludovic.netlib.blas.BLAS.getInstance()),
        "native_blas": impl(lambda: jvm.dev.ludovic.netlib.blas.NativeBLAS.getInstance()),
        "lapack": impl(lambda: jvm.dev.ludovic.netlib.lapack.LAPACK.getInstance()),
        "LD_LIBRARY_PATH": os.environ.get("LD_LIBRARY_PATH", ""),
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", ""),
    }
    started = time.perf_counter()
    ratings = spark.read.parquet(str(work / "ratings.parquet")).cache()
    n_ratings = ratings.count()
    load_s = time.perf_counter() - started
    als = ALS(
        rank=args.rank,
        maxIter=args.iterations,
        regParam=args.regularization,
        alpha=args.alpha,
        implicitPrefs=True,
        userCol="user",
        itemCol="item",
        ratingCol="rating",
        checkpointInterval=args.checkpoint_interval,
        seed=args.seed,
        coldStartStrategy="drop",
    )
    java_pid = next(iter(_java_pids()), None)
    jvm_cpu_started = cpu_seconds(java_pid) if java_pid else None
    started = time.perf_counter()
    model = als.fit(ratings)  # materializes the final user and item factors
    fit_s = time.perf_counter() - started
    jvm_fit_cpu = cpu_seconds(java_pid) - jvm_cpu_started if jvm_cpu_started is not None else None
    loadavg_after_fit = os.getloadavg()
    started = time.perf_counter()
    arrays = {}
    for name, frame, size in (
        ("user_factors", model.userFactors, args.n_users),
        ("item_factors", model.itemFactors, args.n_items),
    ):
        pdf = frame.toPandas()
        dense = np.zeros((size, args.rank), dtype=np.float32)
        dense[pdf["id"].to_numpy()] = np.stack(pdf["features"].to_numpy()).astype(np.float32)
        arrays[name] = dense
    np.savez(work / "spark_factors.npz", **arrays)
    collect_s = time.perf_counter() - started
    java_pids = _java_pids()
    jvm_hwm = {str(pid): vm_hwm_mb(pid) for pid in java_pids}
    versions = {
        "pyspark": pyspark.__version__,
        "spark": spark.version,
        "java": jvm.java.lang.System.getProperty("java.version"),
        "java_vm": jvm.java.lang.System.getProperty("java.vm.name"),
    }
    spark.stop()
    return {
        "versions": versions,
        "blas": blas,
        "ratings": n_ratings,
        "startup_seconds": round(startup_s, 2),
        "load_and_cache_seconds": round(load_s, 2),
        "fit_seconds": round(fit_s, 2),
        "fit_jvm_cpu_seconds": round(jvm_fit_cpu, 2) if jvm_fit_cpu is not None else None,
        "loadavg_after_fit": loadavg_after_fit,
        "seconds_per_iteration": round(fit_s / args.iterations, 2),
        "collect_factors_seconds": round(collect_s, 2),
        "driver_memory": args.spark_driver_memory,
        "checkpoint_interval": args.checkpoint_interval,
        "peak_rss_mb": {
            "jvm": max((v for v in jvm_hwm.values() if v), default=None),
            "jvm_by_pid": jvm_hwm,
            "python_driver": peak_rss_mb()["self"],
        },
    }


ROLES = {
    "prepare": role_prepare,
    "implicit-fit": role_implicit_fit,
    "evaluate": role_evaluate,
    "ttq": role_ttq,
    "sweep": role_sweep,
    "spark": role_spark,
}


# --------------------------------------------------------------------------- orchestration


def setup_spark_venv() -> Path:
    """Create ``bench/.venv-spark`` from ``requirements-spark.txt`` (uv, else venv + pip)."""
    python = SPARK_VENV / "bin" / "python"
    if python.exists():
        return python
    uv = shutil.which("uv") or str(REPO_ROOT / ".venv" / "bin" / "uv")
    if Path(uv).exists():
        subprocess.run([uv, "venv", "--python", "3.11", str(SPARK_VENV)], check=True)
        subprocess.run(
            [uv, "pip", "install", "--python", str(python), "-r", str(SPARK_REQUIREMENTS)],
            check=True,
        )
    else:
        subprocess.run([sys.executable, "-m", "venv", str(SPARK_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-r", str(SPARK_REQUIREMENTS)], check=True
        )
    return python


def build_home(scale: str, home: Path) -> dict:
    """Generate a shop at ``scale``, ingest it and build the marts into ``home``."""
    size = SCALES[scale]
    env = {"AFFINITY_HOME": str(home)}
    affinity = REPO_ROOT / ".venv" / "bin" / "affinity"
    landing = home / "landing" / "generated"
    timings = {}
    steps = (
        (
            "generate",
            [
                str(affinity),
                "generate",
                "--customers",
                str(size["customers"]),
                "--products",
                str(size["products"]),
                "--days",
                str(size["days"]),
                "--seed",
                "42",
                "--out",
                str(landing),
            ],
        ),
        ("ingest", [str(affinity), "ingest", str(landing)]),
        ("build_features", [str(affinity), "build-features", "--as-of", SHOP_END]),
    )
    for name, command in steps:
        started = time.perf_counter()
        subprocess.run(command, check=True, env={**os.environ, **env}, cwd=REPO_ROOT)
        timings[name] = round(time.perf_counter() - started, 1)
    return timings


def parse_variant(variant: str, args) -> dict:
    """``setting:rule[:modifier...]`` -> the ttq run's options.

    setting: ``same`` (Spark's regularization), ``tuned`` (``--ttq-regularization``),
    ``reg<X>`` (regularization X) or ``sweep`` (the sweep's choice, rule ``fixed``);
    rule: ``target``, ``target_se``, ``converge`` or ``fixed<N>`` (N iterations, no
    validation on the clock); modifiers: ``exact<K>`` (K exact-solve iterations after the
    stop), ``cg<S>`` (S CG steps per row), ``chol`` (exact solver throughout), ``valall``
    (every validation customer, not the ``--val-customers`` sample).
    """
    setting, rule, *mods = variant.split(":")
    if setting == "same":
        reg = args.regularization
    elif setting == "tuned":
        reg = args.ttq_regularization
    elif setting.startswith("reg"):
        reg = float(setting[3:])
    elif setting == "sweep":
        reg = None  # filled in from the sweep
    else:
        raise SystemExit(f"unknown ttq setting {setting!r} in {variant!r}: same|tuned|reg<X>|sweep")
    spec = {
        "variant": variant,
        "setting": setting,
        "regularization": reg,
        "rule": rule,
        "iterations": args.iterations,
        "finish_exact": 0,
        "cg_steps": 3,
        "solver": "cg",
        "val_all": False,
    }
    if rule.startswith("fixed") and rule != "fixed":
        spec["rule"], spec["iterations"] = "fixed", int(rule[5:])
    elif rule not in ("target", "target_se", "converge", "fixed"):
        raise SystemExit(
            f"unknown ttq rule {rule!r} in {variant!r}: target|target_se|converge|fixed<N>"
        )
    for mod in mods:
        if mod.startswith("exact"):
            spec["finish_exact"] = int(mod[5:] or 1)
        elif mod.startswith("cg"):
            spec["cg_steps"] = int(mod[2:])
        elif mod == "chol":
            spec["solver"] = "cholesky"
        elif mod == "valall":
            spec["val_all"] = True
        else:
            raise SystemExit(
                f"unknown ttq modifier {mod!r} in {variant!r}: exact<K>|cg<S>|chol|valall"
            )
    return spec


def choose_from_sweep(sweeps: list[dict], spark_val_all: dict, margin_se: float) -> dict:
    """The cheapest schedule (CG iterations, optional exact finish, regularization) whose
    NDCG@10 on every validation customer is >= Spark's plus ``margin_se`` standard errors;
    if none is, the best one. Validation customers only: test figures are not looked at."""
    bar = spark_val_all["ndcg_at_10"] + margin_se * spark_val_all["ndcg_at_10_se"]
    candidates = []
    for sweep in sweeps:
        seconds = 0.0
        for entry in sweep["trajectory"]:
            seconds += entry["fit_seconds"]
            candidates.append(
                (entry["cg"]["val_all"], seconds, sweep["regularization"], entry["iteration"], 0)
            )
            key = f"plus_exact{sweep['finish_exact']}"
            if key in entry:
                candidates.append(
                    (
                        entry[key]["val_all"],
                        seconds + entry["exact_seconds"],
                        sweep["regularization"],
                        entry["iteration"],
                        sweep["finish_exact"],
                    )
                )
    above = [c for c in candidates if c[0] >= bar]
    pick = min(above, key=lambda c: c[1]) if above else max(candidates, key=lambda c: c[0])
    return {
        "regularization": pick[2],
        "iterations": pick[3],
        "finish_exact": pick[4],
        "val_all_ndcg_at_10": pick[0],
        "fit_seconds_in_sweep": round(pick[1], 2),
        "bar_val_all_ndcg_at_10": round(bar, 5),
        "rule": "cheapest at or above the bar" if above else "none at the bar: the best",
    }


def run(args) -> dict:
    if args.home:
        home = Path(args.home).resolve()
        built = None
    else:
        home = Path(args.keep_home or tempfile.mkdtemp(prefix=f"affinity_als_{args.scale}_"))
        home = home.resolve()
        if (home / "warehouse.duckdb").exists():
            built = None
            print(f"[bench_als_spark] reusing the warehouse in {home}")
        else:
            home.mkdir(parents=True, exist_ok=True)
            built = build_home(args.scale, home)
    print(f"[bench_als_spark] AFFINITY_HOME={home}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="affinity_als_work_"))

    def common_args(regularization: float) -> list[str]:
        return [
            "--home",
            str(home),
            "--work",
            str(work),
            "--rank",
            str(args.rank),
            "--regularization",
            str(regularization),
            "--alpha",
            str(args.alpha),
            "--seed",
            str(args.seed),
            "--eval-days",
            str(args.eval_days),
            "--val-customers",
            str(args.val_customers),
        ] + (["--as-of", args.as_of] if args.as_of else [])

    common = common_args(args.regularization)
    main_env = {"AFFINITY_HOME": str(home), "OPENBLAS_NUM_THREADS": "1"}
    try:
        prepared = run_role(MAIN_PYTHON, "prepare", common, main_env)
        openblas = find_openblas() if args.spark_blas == "native" else None
        spark_env = {"OPENBLAS_NUM_THREADS": "1", "PYSPARK_PYTHON": sys.executable}
        if openblas:
            spark_env["LD_LIBRARY_PATH"] = ":".join(
                p for p in (openblas, os.environ.get("LD_LIBRARY_PATH", "")) if p
            )
        spark = run_role(
            Path(sys.executable),
            "spark",
            common
            + [
                "--iterations",
                str(args.iterations),
                "--n-users",
                str(prepared["shape"][0]),
                "--n-items",
                str(prepared["shape"][1]),
                "--spark-driver-memory",
                args.spark_driver_memory,
                "--spark-blas",
                args.spark_blas,
                "--checkpoint-interval",
                str(args.checkpoint_interval),
            ],
            spark_env,
        )
        spark.update(run_role(MAIN_PYTHON, "evaluate", common, main_env))
        implicit_runs = [
            run_role(
                MAIN_PYTHON,
                "implicit-fit",
                common + ["--iterations", str(args.iterations), "--threads", str(threads)],
                main_env,
            )
            for threads in args.implicit_threads
        ]
        specs = [parse_variant(v, args) for v in args.ttq_variants]
        sweeps, choice = [], None
        if any(spec["setting"] == "sweep" for spec in specs):
            for reg in args.sweep_regs:
                sweeps.append(
                    run_role(
                        MAIN_PYTHON,
                        "sweep",
                        common_args(reg)
                        + [
                            "--iterations",
                            str(args.sweep_iterations),
                            "--threads",
                            str(args.ttq_threads),
                            "--finish-exact",
                            str(args.sweep_finish_exact),
                            "--min-iterations",
                            str(args.sweep_min_iterations),
                        ]
                        + (["--sweep-test"] if args.sweep_test else []),
                        main_env,
                    )
                )
            choice = choose_from_sweep(sweeps, spark["quality"]["val_all"], args.sweep_margin_se)
            print(f"[bench_als_spark] sweep choice: {choice}", flush=True)
        ttq_runs = []
        for spec in specs:
            if spec["setting"] == "sweep":
                spec.update(
                    regularization=choice["regularization"],
                    rule="fixed",
                    iterations=choice["iterations"],
                    finish_exact=choice["finish_exact"],
                )
            val = spark["quality"]["val_all" if spec["val_all"] else "val"]
            ttq_args = common_args(spec["regularization"])
            if spec["val_all"]:
                ttq_args[ttq_args.index("--val-customers") + 1] = "0"
            answer = run_role(
                MAIN_PYTHON,
                "ttq",
                ttq_args
                + [
                    "--iterations",
                    str(spec["iterations"]),
                    "--threads",
                    str(args.ttq_threads),
                    "--rule",
                    spec["rule"],
                    "--target-ndcg",
                    repr(val["ndcg_at_10"]),
                    "--target-se",
                    repr(val["ndcg_at_10_se"]),
                    "--min-gain",
                    str(args.min_gain),
                    "--patience",
                    str(args.patience),
                    "--finish-exact",
                    str(spec["finish_exact"]),
                    "--cg-steps",
                    str(spec["cg_steps"]),
                    "--solver",
                    spec["solver"],
                ],
                main_env,
            )
            answer["setting"] = spec["setting"]
            answer["variant"] = spec["variant"]
            answer["regularization"] = spec["regularization"]
            ttq_runs.append(answer)
    finally:
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"[bench_als_spark] kept work dir {work}")
    result = assemble(args, home, built, prepared, spark, implicit_runs, ttq_runs)
    result["sweep"] = {"runs": sweeps, "choice": choice, "margin_se": args.sweep_margin_se}
    return result


def assemble(args, home, built, prepared, spark, implicit_runs, ttq_runs) -> dict:
    spark_test = spark["quality"]["test"]
    equal = []
    for run_ in implicit_runs:
        equal.append(
            {
                "threads": run_["threads"],
                "fit_seconds": run_["fit_seconds"],
                "seconds_per_iteration": run_["seconds_per_iteration"],
                "speedup_vs_spark": round(spark["fit_seconds"] / run_["fit_seconds"], 2),
                "test": run_["quality"]["test"],
                "val": run_["quality"]["val"],
                "ndcg_ratio_vs_spark": round(
                    run_["quality"]["test"]["ndcg_at_10"] / spark_test["ndcg_at_10"], 3
                ),
                "hr_ratio_vs_spark": round(
                    run_["quality"]["test"]["hr_at_10"] / spark_test["hr_at_10"], 3
                ),
                "peak_rss_mb": run_["peak_rss_mb"],
                "iterations": run_["iterations"],
            }
        )
    ttq = []
    for run_ in ttq_runs:
        first_test_hit = next(
            (e for e in run_["trajectory"] if e["test_ndcg_at_10"] >= spark_test["ndcg_at_10"]),
            None,
        )
        final_test = run_["final"].get("test_ndcg_at_10", float("nan"))
        reached = final_test >= spark_test["ndcg_at_10"]
        ttq.append(
            {
                **{k: v for k, v in run_.items() if k not in ("trajectory", "process_seconds")},
                "reached_spark_test_ndcg": reached,
                "speedup_vs_spark_fit": round(spark["fit_seconds"] / run_["seconds"], 2),
                "target_speedup": args.target_speedup,
                "meets_target": bool(
                    reached and spark["fit_seconds"] / run_["seconds"] >= args.target_speedup
                ),
                "first_iteration_at_spark_test_ndcg": first_test_hit,
                "trajectory": run_["trajectory"],
            }
        )
    import importlib.metadata as md

    def version(name):
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return "n/a"

    implicit_version = implicit_runs[0]["implicit"] if implicit_runs else "n/a"
    return {
        "benchmark": "als_spark",
        "scale": args.scale or "home",
        "home": str(home),
        "home_build_seconds": built,
        "hyperparameters": {
            "rank": args.rank,
            "iterations": args.iterations,
            "regularization": args.regularization,
            "alpha": args.alpha,
            "confidence": "c = 1 + alpha * r (Spark's implicit formula; implicit is given the "
            "matrix 1 + alpha * r since it uses the cell value as c)",
            "implicit_prefs": True,
            "seed": args.seed,
            "spark_master": "local[2]",
            "spark_blas_requested": args.spark_blas,
            "regularization_note": "same value, different meaning: Spark scales regParam by "
            "each user's / item's number of ratings (ALS-WR), implicit adds it as is",
            "implicit_solver": "conjugate gradient (3 steps), float32",
        },
        "data": {k: v for k, v in prepared.items() if k != "process_seconds"},
        "spark": spark,
        "implicit_equal_settings": equal,
        "time_to_quality": ttq,
        "machine": machine(
            implicit=implicit_version,
            pyspark=spark["versions"]["pyspark"],
            java=spark["versions"]["java"],
            spark_blas=spark["blas"]["blas"],
            spark_lapack=spark["blas"]["lapack"],
            numpy=version("numpy"),
        ),
        "java_version_line": java_version(),
        "orchestrator_peak_rss_mb": peak_rss_mb(),
        "measured_at": now_utc(),
    }


def _sweep_markdown(sweep: dict, spark_val_all: dict | None) -> str:
    """The regularization sweep as a table: validation NDCG@10 (every validation customer)
    per CG iteration, and with one exact-solve iteration on top."""
    if not sweep.get("runs"):
        return ""
    lines = []
    for run_ in sweep["runs"]:
        cells = []
        for e in run_["trajectory"]:
            cell = f"{e['cg']['val_all']:.5f}"
            extra = e.get(f"plus_exact{run_['finish_exact']}")
            if extra:
                cell += f" / {extra['val_all']:.5f}"
            cells.append(cell)
        lines.append(f"| {run_['regularization']:g} | " + " | ".join(cells) + " |")
    width = max(len(r["trajectory"]) for r in sweep["runs"])
    head = " | ".join(f"it. {i + 1}" for i in range(width))
    c = sweep["choice"]
    spark = (
        f"{spark_val_all['ndcg_at_10']:.5f} (SE {spark_val_all['ndcg_at_10_se']:.5f})"
        if spark_val_all
        else "-"
    )
    return f"""
### Regularization sweep (off the clock; validation customers only)

CG (3 steps) trajectories on the prepared matrix, NDCG@10 on all
{sweep["runs"][0]["validation_customers"]:,} validation customers after each iteration
(`cg / cg + 1 exact`). Spark's NDCG@10 on them: {spark}. Choice rule: the cheapest
schedule at >= Spark + {sweep["margin_se"]:g} SE (bar {c["bar_val_all_ndcg_at_10"]}), else
the best: **reg {c["regularization"]:g}, {c["iterations"]} CG iterations
+ {c["finish_exact"]} exact** ({c["rule"]}; validation NDCG@10 {c["val_all_ndcg_at_10"]}).

| reg | {head} |
|---|{"---|" * width}
{chr(10).join(lines)}
"""


def markdown(r: dict) -> str:
    s, d, h = r["spark"], r["data"], r["hyperparameters"]
    st = s["quality"]["test"]
    rows = [
        f"| Spark MLlib ALS (local[2], {s['blas']['blas'].rsplit('.', 1)[-1]}) | "
        f"{s['fit_seconds']} | {s['seconds_per_iteration']} | {st['ndcg_at_10']:.4f} | "
        f"{st['hr_at_10']:.4f} | JVM {s['peak_rss_mb']['jvm']} + driver "
        f"{s['peak_rss_mb']['python_driver']} | 1.00 |"
    ]
    for e in r["implicit_equal_settings"]:
        rows.append(
            f"| implicit ALS, {e['threads']} thread(s) | {e['fit_seconds']} | "
            f"{e['seconds_per_iteration']} | {e['test']['ndcg_at_10']:.4f} | "
            f"{e['test']['hr_at_10']:.4f} | {e['peak_rss_mb']['process']} "
            f"(fit {e['peak_rss_mb']['during_fit']}) | {e['speedup_vs_spark']} |"
        )
    ttq_rows = []
    for t in r["time_to_quality"]:
        f = t["final"]
        solver = t.get("solver", "cg3") + (
            f" + {t['finish_exact']} exact" if t.get("finish_exact") else ""
        )
        ttq_rows.append(
            f"| `{t.get('variant', t['setting'])}` (reg {t['regularization']}) | {t['rule']} | "
            f"{solver} | {t.get('validation_customers', '-')} | {t['threads']} | "
            f"{t['iterations_run']} | {t['load_and_build_seconds']} | "
            f"{t['fit_and_validation_seconds']} | **{t['seconds']}** | {f.get('val_ndcg_at_10')} | "
            f"{f.get('test_ndcg_at_10')} | {f.get('test_hr_at_10')} | "
            f"{'yes' if t['reached_spark_test_ndcg'] else 'no'} | **{t['speedup_vs_spark_fit']}x** | "
            f"{'met' if t['meets_target'] else 'missed'} |"
        )
    eq = "\n".join(rows)
    tq = "\n".join(ttq_rows)
    target_x = f"{r['time_to_quality'][0]['target_speedup']:g}x" if r["time_to_quality"] else "-"
    sweep_md = _sweep_markdown(r.get("sweep") or {}, s["quality"].get("val_all"))
    return f"""# ALS vs Spark MLlib ALS ({r["scale"]})

Matrix: {d["shape"][0]:,} customers x {d["shape"][1]:,} products, {d["nnz"]:,} non-zeros
(history before {d["heldout_window"][1:11]}, {d["events_before_cutoff"]:,} events). Held-out:
purchases new to the customer in {d["heldout_window"]}: {d["heldout_customers"]:,} customers,
split by id hash into {d["test_customers"]:,} test customers (all figures below) and
validation customers ({d["validation_customers"]:,} sampled; used only for stopping).

Same hyperparameters: rank {h["rank"]}, {h["iterations"]} iterations, regularization
{h["regularization"]}, alpha {h["alpha"]} ({h["confidence"]}), implicit preferences, seed
{h["seed"]}. {h["regularization_note"]}.

## Equal settings ({h["iterations"]} iterations each)

| model | fit s | s/iteration | NDCG@10 | HR@10 | peak RSS MB | speed-up |
|---|---|---|---|---|---|---|
{eq}

Spark: {s["versions"]["spark"]} on Java {s["versions"]["java"]}, BLAS `{s["blas"]["blas"]}`,
LAPACK `{s["blas"]["lapack"]}`, driver memory {s["driver_memory"]}, checkpoint every
{s["checkpoint_interval"]} iterations; fit timed around `ALS.fit` with the input cached
(start-up {s["startup_seconds"]} s and load {s["load_and_cache_seconds"]} s not counted).

## Time to quality (target: >= {target_x} sooner than Spark's fit, test NDCG@10 >= Spark's)

Our training step from scratch: load the interactions from the DuckDB warehouse, build the
CSR (aggregation in SQL, float32), fit implicit ALS with a per-iteration callback that scores
NDCG@10 on the validation customers; rule `target` stops at Spark's validation NDCG@10
({s["quality"]["val"]["ndcg_at_10"]:.4f}) or when the validation NDCG@10 stops improving,
rule `converge` only on the latter, rule `target_se` at Spark's validation NDCG@10 plus one
standard error, rule `fixed` runs a set number of iterations with no validation on the
clock (a schedule chosen beforehand on the validation customers: the sweep below). Setting
`same` uses Spark's hyperparameters, `tuned` implicit's own regularization (the product
default), `reg<X>` regularization X, `sweep` the sweep's choice; rank, alpha and confidence
unchanged. Solver `cg3` = implicit's 3 conjugate-gradient steps per row; `+ K exact` = K
more iterations with implicit's exact (Cholesky) solve after the stop. `valall` scores every
validation customer (target: Spark's NDCG@10 on all of them). Test scoring for the
trajectory is excluded from the clock; "Spark fit / ours" is Spark's 15-iteration fit time
over our total.

| variant | rule | solver | val customers | threads | iterations | load+build s | fit+validation s | total s | val NDCG@10 | test NDCG@10 | test HR@10 | >= Spark test NDCG ({st["ndcg_at_10"]:.4f}) | Spark fit / ours | {target_x} target |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
{tq}
{sweep_md}
Machine: {r["machine"]["nproc"]} CPUs, {r["machine"]["ram_gb"]} GB RAM; implicit
{r["machine"]["implicit"]}, pyspark {r["machine"]["pyspark"]}, {r["java_version_line"]};
measured {r["measured_at"]}.
"""


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="AFFINITY_HOME with a built warehouse")
    parser.add_argument("--scale", choices=sorted(SCALES), help="generate and build a home")
    parser.add_argument("--keep-home", help="where --scale builds the home (reused if built)")
    parser.add_argument("--as-of", help="run date (default: the day after the last event)")
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--regularization", type=float, default=0.1)
    parser.add_argument("--alpha", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--eval-days", type=int, default=30)
    parser.add_argument(
        "--val-customers",
        type=int,
        default=5000,
        help="validation customers scored per iteration (sample cap)",
    )
    parser.add_argument(
        "--implicit-threads", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2]
    )
    parser.add_argument("--ttq-threads", type=int, default=2)
    parser.add_argument(
        "--ttq-variants",
        type=lambda s: s.split(","),
        default=[
            "same:target",
            "same:converge",
            "tuned:target",
            "same:target:exact1",
            "tuned:target:exact1",
            "tuned:target_se:valall",
            "reg30:target",
            "reg50:target",
            "sweep:fixed",
        ],
        help="time-to-quality runs, setting:rule[:modifier...] (see parse_variant): setting "
        "same|tuned|reg<X>|sweep; rule target|target_se|converge|fixed<N>; modifiers "
        "exact<K>|cg<S>|chol|valall",
    )
    parser.add_argument(
        "--ttq-regularization",
        type=float,
        default=10.0,
        help="implicit's regularization for the 'tuned' runs (the product's ALSParams default; "
        "best on the 1m validation customers)",
    )
    parser.add_argument(
        "--sweep-regs",
        type=lambda s: [float(x) for x in s.split(",")],
        default=[10.0, 30.0, 50.0, 100.0],
        help="regularizations the 'sweep' ttq setting tries (off the clock, validation only)",
    )
    parser.add_argument("--sweep-iterations", type=int, default=5)
    parser.add_argument(
        "--sweep-finish-exact",
        type=int,
        default=1,
        help="also score each sweep iteration with this many exact-solve iterations on top",
    )
    parser.add_argument("--sweep-min-iterations", type=int, default=2)
    parser.add_argument(
        "--sweep-test",
        action="store_true",
        help="also score the test customers in the sweep (reported only; slower)",
    )
    parser.add_argument(
        "--sweep-margin-se",
        type=float,
        default=1.0,
        help="the sweep picks the cheapest schedule at >= Spark's validation NDCG@10 plus this "
        "many of its standard errors (all validation customers)",
    )
    parser.add_argument(
        "--target-speedup", type=float, default=20.0, help="issue 20: >= 20x sooner than Spark"
    )
    parser.add_argument("--min-gain", type=float, default=0.005)
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--spark-driver-memory", default=None)
    parser.add_argument("--spark-blas", choices=["native", "java"], default="native")
    parser.add_argument("--checkpoint-interval", type=int, default=5)
    parser.add_argument("--keep-work", action="store_true")
    parser.add_argument("--name", help="results name (default als_spark_<scale>)")
    parser.add_argument("--setup", action="store_true", help="create bench/.venv-spark and exit")
    # internal: one step in a child process
    parser.add_argument("--role", choices=sorted(ROLES), help=argparse.SUPPRESS)
    parser.add_argument("--answer", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--rule", default="target", help=argparse.SUPPRESS)
    parser.add_argument("--target-ndcg", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--target-se", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--finish-exact", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--cg-steps", type=int, default=3, help=argparse.SUPPRESS)
    parser.add_argument(
        "--solver", choices=["cg", "cholesky"], default="cg", help=argparse.SUPPRESS
    )
    parser.add_argument("--min-iterations", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--n-users", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--n-items", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role:
        result = ROLES[args.role](args)
        Path(args.answer).write_text(json.dumps(result, indent=2, default=str))
        return 0
    if args.setup:
        print(setup_spark_venv())
        return 0
    if not args.home and not args.scale:
        raise SystemExit("give --home DIR (a built AFFINITY_HOME) or --scale 1m|10m")
    try:
        import pyspark  # noqa: F401
    except ImportError:
        python = setup_spark_venv()
        os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])
    if args.spark_driver_memory is None:
        args.spark_driver_memory = "10g" if args.scale == "10m" else "4g"
    result = run(args)
    name = args.name or f"als_spark_{args.scale or 'home'}"
    path = write_results(name, result, markdown(result))
    print(markdown(result))
    print(f"wrote {path}")
    print(f"AFFINITY_HOME used: {result['home']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
