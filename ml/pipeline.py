"""The pipeline, declared once: its stages in order, what each runs, reads and writes.

Everything that runs Affinity takes the order from here: the Airflow DAGs
(``dags/affinity_daily.py``, ``dags/affinity_campaigns.py``), ``affinity run`` and every
``affinity`` sub-command (:mod:`ml.orchestration.runner`), the reliability tests and the
benchmarks. A test fails when the DAG's task order differs from :data:`DAILY`.

::

    landing files
        -> ingest        typed load into raw.*, bad rows to raw.quarantine
        -> product_text  product embeddings and inferred categories      (ml.*)
        -> review_insight review sentiment and aspects, sentiment model  (ml.*, MLflow)
        -> dbt_features  dbt: staging -> intermediate -> marts (with tests)
        -> train         recommenders trained, reviewed in MLflow, champion gated
        -> score         recommendations, similar products, segments    (ml.*)
        -> campaigns     audiences of campaigns launching next           (ml.*)
        -> dbt_outputs   dbt: output marts over ml.* and the marts
        -> publish       verified analyst snapshot, swapped in atomically

This module is data only (no imports of the package): any layer may read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """One step of a pipeline.

    Attributes
    ----------
    name : str
        Task id in the DAG and stage name in ``ml.stage_runs``.
    does : str
        One line for people (DAG docs, ``affinity --help``).
    reads, writes : tuple of str
        Warehouse relations (``schema.table``, ``schema.*``) or files it reads and writes.
    run : str
        ``module:function`` of a Python stage; the function takes a :class:`RunContext`
        and returns plain data (the task's XCom). Empty for dbt stages.
    dbt_select : tuple of str
        dbt selectors of a dbt stage (``dbt build --select ...``).
    emits_snapshot : bool
        The stage swaps in a new analyst snapshot (the DAG's Asset event).
    own_process : bool
        The DAG runs it in a child process (:mod:`ml.orchestration.child`), so the
        memory of a large stage goes back to the OS when it ends.
    """

    name: str
    does: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    run: str = ""
    dbt_select: tuple[str, ...] = ()
    emits_snapshot: bool = False
    own_process: bool = False

    @property
    def is_dbt(self) -> bool:
        return bool(self.dbt_select)


@dataclass(frozen=True)
class RunContext:
    """What every stage of one run gets: the logical date and the run's parameters.

    Attributes
    ----------
    logical_date : str or None
        ``YYYY-MM-DD``: the run sees data up to and including this day. Only ``ingest``
        may run without one.
    run_id : str or None
        The pipeline run's id (the Airflow run id), recorded in ``pipeline_runs``.
    input_path : str
        Landing folder or Online Retail export for ``ingest`` (empty: the inbox).
    retrain : bool
        Train and gate a new model (otherwise the champion keeps serving).
    top_n : int
        Recommendations per customer.
    full_refresh : bool
        dbt stages rebuild incremental models from scratch.
    keep_snapshots : int
        Previous snapshots ``publish`` keeps for rollback.
    replay_campaigns : bool
        ``campaigns`` first launches, as of their launch dates, the campaigns that ended
        unlaunched (a first run on a shop with history), so they are measured.
    """

    logical_date: str | None
    run_id: str | None = None
    input_path: str = ""
    retrain: bool = True
    top_n: int = 20
    full_refresh: bool = False
    keep_snapshots: int = 3
    replay_campaigns: bool = False


_STAGES = "ml.orchestration.stages"


def _python_stage(
    name: str, does: str, *, reads: tuple[str, ...], writes: tuple[str, ...], **options: bool
) -> Stage:
    """A Python stage: it runs ``ml.orchestration.stages:<name>_stage``."""
    return Stage(name, does, reads=reads, writes=writes, run=f"{_STAGES}:{name}_stage", **options)


FEATURE_SELECTION = (
    "path:seeds",
    "path:models/staging/raw",
    "path:models/staging/text",
    "path:models/intermediate",
    "path:models/marts",
)
OUTPUT_SELECTION = ("path:models/staging/ml", "path:models/outputs")

DAILY: tuple[Stage, ...] = (
    _python_stage(
        "ingest",
        "load the landing files into raw.*; bad rows to raw.quarantine with their rule",
        reads=("landing files",),
        writes=("raw.*", "raw.quarantine", "raw.load_manifest"),
    ),
    _python_stage(
        "product_text",
        "embed new product texts; infer a category for products without one",
        reads=("raw.products", "raw.orders", "raw.order_lines"),
        writes=("ml.product_embeddings", "ml.product_categories", "ml.taxonomy_*"),
    ),
    _python_stage(
        "review_insight",
        "score every review's sentiment (model retrained when reviews changed); aspects per product",
        reads=("raw.reviews", "MLflow registry"),
        writes=(
            "ml.review_sentiment",
            "ml.product_review_aspects",
            "MLflow runs",
            "MLflow registry",
        ),
    ),
    Stage(
        "dbt_features",
        "dbt build of the seeds, staging, intermediate and marts models (with tests)",
        reads=(
            "raw.*",
            "ml.product_categories",
            "ml.review_sentiment",
            "ml.product_review_aspects",
        ),
        writes=("staging.*", "intermediate.*", "marts.*", "seeds.*"),
        dbt_select=FEATURE_SELECTION,
    ),
    _python_stage(
        "train",
        "train ALS / BPR / popularity, review in MLflow, gate the champion",
        reads=("marts.interaction_events", "marts.customer_rfm_segments"),
        writes=("MLflow runs", "MLflow registry"),
        own_process=True,
    ),
    _python_stage(
        "score",
        "recommendations, similar products and segments from the serving model",
        reads=("marts.*", "MLflow registry"),
        writes=(
            "ml.recommendations",
            "ml.similar_products",
            "ml.customer_clusters",
            "ml.cluster_profiles",
            "ml.affinity_audiences",
            "ml.customer_affinity",
        ),
        own_process=True,
    ),
    _python_stage(
        "campaigns",
        "freeze the audiences of the campaigns launching next; measure and learn from ended ones",
        reads=("marts.*", "seeds.campaigns_manual", "ml.recommendations"),
        writes=("ml.campaign_audiences", "ml.campaign_results", "ml.campaign_insights"),
        # At 100M events its audiences, featured products and copy took the DAG's own
        # process to 21 GiB.
        own_process=True,
    ),
    Stage(
        "dbt_outputs",
        "dbt build of the output marts over ml.* and the marts",
        reads=("ml.*", "marts.*"),
        writes=("outputs.*",),
        dbt_select=OUTPUT_SELECTION,
    ),
    _python_stage(
        "publish",
        "build, verify and atomically swap in the analyst snapshot",
        reads=("outputs.*", "ml.stage_runs", "ml.pipeline_runs"),
        writes=("published/affinity.duckdb", "ml.pipeline_runs"),
        emits_snapshot=True,
        # Its DuckDB copy of the outputs took the DAG's own process to 4.0 GiB at 10m.
        own_process=True,
    ),
)

# The campaign measurement DAG, scheduled on the daily DAG's snapshot.
CAMPAIGN_MEASUREMENT: tuple[Stage, ...] = (
    _python_stage(
        "measure",
        "measure the lift of campaigns whose window has ended; insights by segment",
        reads=("ml.campaign_audiences", "marts.fct_orders"),
        writes=("ml.campaign_results", "ml.campaign_insights"),
    ),
    _python_stage(
        "publish_results",
        "build the campaign output marts and refresh the snapshot",
        reads=("ml.campaign_results", "outputs.*"),
        writes=("published/affinity.duckdb",),
    ),
)

PIPELINES = {"affinity_daily": DAILY, "affinity_campaigns": CAMPAIGN_MEASUREMENT}


def stage(name: str, pipeline: tuple[Stage, ...] = DAILY) -> Stage:
    """Return the stage called ``name``.

    Raises
    ------
    LookupError
        With the known stage names.
    """
    for candidate in pipeline:
        if candidate.name == name:
            return candidate
    known = ", ".join(s.name for s in pipeline)
    raise LookupError(f"no stage {name!r}; the stages are: {known}")


def stage_names(pipeline: tuple[Stage, ...] = DAILY) -> list[str]:
    """Stage names in run order."""
    return [s.name for s in pipeline]


def stages_between(
    first: str | None = None, last: str | None = None, pipeline: tuple[Stage, ...] = DAILY
) -> list[Stage]:
    """The stages from ``first`` to ``last`` inclusive, in run order (default: all)."""
    names = stage_names(pipeline)
    start = names.index(stage(first, pipeline).name) if first else 0
    stop = names.index(stage(last, pipeline).name) if last else len(names) - 1
    if stop < start:
        raise ValueError(f"stage {last!r} comes before {first!r}")
    return list(pipeline[start : stop + 1])
