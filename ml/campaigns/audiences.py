"""Campaign audiences: who gets which campaign, in which group, with which message.

For the run of logical date ``D`` (data up to the end of ``D``; messages go out on
``D + 1``), every campaign due to launch (see :meth:`Campaign.launch_due`) and not
launched by an earlier run gets its audience, frozen from then on:

1. **eligible**: customers of ``marts.dim_customers`` (erased customers are gone past
   dbt staging; ``raw.erasure_requests`` is checked again here) with
   ``marketing_opt_in``;
2. **target**: RFM segment names, behavioural cluster name, category (customers the model
   knows or whose top spend category it is) or a rule over ``customer_features``;
3. **ranked** by the model's predicted affinity: ``u . mean(v)`` over the category's
   products for a category campaign, the customer's best category affinity otherwise;
   customers the model does not know come after, by frequency, spend and id;
4. **frequency cap**: campaigns launch in priority order (higher first, then earlier
   start, then id), each skipping customers already in ``frequency_cap`` audiences whose
   contact day is within ``cap_days - 1`` days of this one, so no 7-day window holds more
   than ``frequency_cap`` contacts, however runs and backfills interleave;
5. **max audience**: the first ``max_audience`` ranked customers;
6. **assignment**: treatment / control from the seeded hash of (campaign, customer)
   (:mod:`ml.campaigns.assignment`), after selection, so both groups come from the same
   selected population;
7. **products and message**: the customer's top recommendations (of the campaign's
   category, when it has one; bestsellers when they have none), and for treatment
   customers a message from the campaign's copy writer(s), through the guardrails
   (:mod:`ml.campaigns.messaging`; PII placeholders kept literally).

Output: ``ml.campaign_audiences``, one partition per launch date, kept for good (the
measurement needs the audience after the campaign ends). Re-running a date replaces its
partition; the assignment never changes.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from ml.campaigns.assignment import CONTROL, TREATMENT, assign_groups
from ml.campaigns.definitions import (
    Campaign,
    CampaignConfig,
    CampaignError,
    contact_start,
    load_campaigns,
    relation_exists,
    validate_campaigns,
)
from ml.campaigns.messaging import (
    EXTRA_AUDIENCE_COLUMNS,
    CopyContext,
    campaign_copy,
    ensure_audience_columns,
)
from ml.campaigns.rules import parse_rule
from ml.publish import ML_SCHEMA, read_frame, record_stage, to_date, write_partition
from ml.warehouse import connect

if TYPE_CHECKING:
    import duckdb

    from ml.score import ScoringModel

log = logging.getLogger(__name__)

AUDIENCE_TABLE = "campaign_audiences"
AUDIENCE_COLUMNS = {
    "logical_date": "DATE",
    "campaign_id": "VARCHAR",
    "customer_id": "VARCHAR",
    # Published as "group" (a reserved word, so the ml table spells it out).
    "assignment_group": "VARCHAR",
    "rank": "INTEGER",
    "affinity": "DOUBLE",
    "segment": "VARCHAR",
    "cluster_name": "VARCHAR",
    "product_ids": "VARCHAR[]",
    "product_names": "VARCHAR[]",
    "message": "VARCHAR",
    "channel": "VARCHAR",
    "contact_date": "DATE",
    **EXTRA_AUDIENCE_COLUMNS,
}

# Reason codes of ml.recommendations in words (as the dbt mart `recommendations` says them).
_REASONS = {
    "bought_similar": "because you bought {product}",
    "bought_before": "because you bought {product} before",
    "viewed_similar": "because you viewed {product}",
    "popular_in_segment": "popular with {context} customers",
    "popular_in_country": "popular in {context}",
    "popular_overall": "popular right now",
}


@dataclass
class AudienceReport:
    """What one audience build did."""

    logical_date: date
    launched: list[str]
    rows: int
    sizes: dict[str, dict[str, int]] = field(default_factory=dict)
    capped: dict[str, int] = field(default_factory=dict)
    model_version: str | None = None
    seconds: float = 0.0

    def summary(self) -> str:
        if not self.launched:
            return f"campaign audiences for {self.logical_date}: no campaign launches"
        parts = [
            f"{cid} {s.get(TREATMENT, 0)} treatment + {s.get(CONTROL, 0)} control"
            + (f" ({self.capped[cid]} capped)" if self.capped.get(cid) else "")
            for cid, s in self.sizes.items()
        ]
        return (
            f"campaign audiences for {self.logical_date}: {'; '.join(parts)} "
            f"({self.rows} rows in {self.seconds:.1f}s)"
        )


# --------------------------------------------------------------------------- inputs


def _latest_partition(con, table: str, day: date) -> date | None:
    if not relation_exists(con, ML_SCHEMA, table):
        return None
    return con.execute(
        f"SELECT max(logical_date) FROM {ML_SCHEMA}.{table} WHERE logical_date <= ?", [day]
    ).fetchall()[0][0]


def erased_customers_sql(con) -> str:
    """SQL of the erased customer ids (empty when nothing was ever erased)."""
    if relation_exists(con, "raw", "erasure_requests"):
        return "SELECT trim(customer_id) FROM raw.erasure_requests WHERE customer_id IS NOT NULL"
    return "SELECT NULL::VARCHAR WHERE false"


def forget_erased(con) -> int:
    """Delete erased customers from every stored audience (right to be forgotten)."""
    if not relation_exists(con, ML_SCHEMA, AUDIENCE_TABLE):
        return 0
    erased = erased_customers_sql(con)
    count = con.execute(
        f"SELECT count(*) FROM {ML_SCHEMA}.{AUDIENCE_TABLE} WHERE customer_id IN ({erased})"
    ).fetchall()[0][0]
    if count:
        con.execute(f"DELETE FROM {ML_SCHEMA}.{AUDIENCE_TABLE} WHERE customer_id IN ({erased})")
        log.info("removed %d audience rows of erased customers", count)
    return int(count)


def load_eligible(con, day: date) -> pl.DataFrame:
    """Opted-in, not erased customers with their features, RFM segment and cluster.

    One row per customer, sorted by id; the feature columns are those of
    ``marts.customer_features``.
    """
    customers = read_frame(
        con,
        f"""
        SELECT customer_id FROM marts.dim_customers
        WHERE coalesce(marketing_opt_in, false)
          AND customer_id NOT IN ({erased_customers_sql(con)})
        ORDER BY customer_id
        """,
    )
    features = read_frame(con, "SELECT * FROM marts.customer_features")
    features = features.drop([c for c in ("marketing_opt_in",) if c in features.columns])
    segments = (
        read_frame(con, "SELECT customer_id, segment FROM marts.customer_rfm_segments")
        if relation_exists(con, "marts", "customer_rfm_segments")
        else pl.DataFrame(schema={"customer_id": pl.String, "segment": pl.String})
    )
    cluster_date = _latest_partition(con, "customer_clusters", day)
    clusters = (
        read_frame(
            con,
            f"SELECT customer_id, cluster_name FROM {ML_SCHEMA}.customer_clusters "
            "WHERE logical_date = ?",
            [cluster_date],
        )
        if cluster_date is not None
        else pl.DataFrame(schema={"customer_id": pl.String, "cluster_name": pl.String})
    )
    return (
        customers.join(features, on="customer_id", how="left")
        .join(segments, on="customer_id", how="left")
        .join(clusters, on="customer_id", how="left")
        .sort("customer_id")
    )


def load_products(con) -> pl.DataFrame:
    """``product_id, product_name, category, price, eligible`` of the catalogue."""
    return read_frame(
        con,
        """
        SELECT product_id, coalesce(product_name, product_id) AS product_name, category, price,
               coalesce(is_product, true) AND coalesce(is_active, true) AS eligible
        FROM marts.dim_products ORDER BY product_id
        """,
    )


def load_recommendations(
    con, day: date, products: pl.DataFrame, customer_ids: list[str]
) -> pl.DataFrame:
    """The latest recommendations up to ``day`` of ``customer_ids``, with names and reasons."""
    scored = _latest_partition(con, "recommendations", day)
    if scored is None:
        log.warning("no ml.recommendations up to %s: audiences feature bestsellers", day)
        return pl.DataFrame(
            schema={
                "customer_id": pl.String,
                "rank": pl.Int32,
                "product_id": pl.String,
                "product_name": pl.String,
                "category": pl.String,
                "price": pl.Float64,
                "reason": pl.String,
            }
        )
    # Only the audiences' customers: the full table is customers x N rows.
    con.register("_audience_members", pl.DataFrame({"customer_id": customer_ids}).to_arrow())
    try:
        recs = read_frame(
            con,
            f"""
            SELECT customer_id, rank, product_id, reason_code, reason_product_id, reason_context
            FROM {ML_SCHEMA}.recommendations
            WHERE logical_date = ?
              AND customer_id IN (SELECT customer_id FROM _audience_members)
            ORDER BY customer_id, rank
            """,
            [scored],
        )
    finally:
        con.unregister("_audience_members")
    names = products.select("product_id", "product_name", "category", "price")
    recs = recs.join(names, on="product_id", how="left").join(
        names.select(
            pl.col("product_id").alias("reason_product_id"),
            pl.col("product_name").alias("reason_product_name"),
        ),
        on="reason_product_id",
        how="left",
    )
    return recs.with_columns(
        pl.col("product_name").fill_null(pl.col("product_id")), reason_expr().alias("reason")
    ).select("customer_id", "rank", "product_id", "product_name", "category", "price", "reason")


def reason_expr() -> pl.Expr:
    """A recommendation's reason in words, e.g. ``because you bought Oak mug``.

    The same wording as the dbt mart ``recommendations`` gives its ``reason`` column.
    """
    code = pl.col("reason_code")
    fields = {
        "product": pl.coalesce("reason_product_name", "reason_product_id", pl.lit("it")),
        "context": pl.col("reason_context").fill_null("our"),
    }
    expr = pl.when(False).then(pl.lit(None, pl.String))
    for reason_code, template in _REASONS.items():
        parts = [pl.lit(template)]
        for name, value in fields.items():
            marker = "{" + name + "}"
            if marker in template:
                before, after = template.split(marker)
                parts = [pl.lit(before), value, pl.lit(after)]
        expr = expr.when(code == reason_code).then(pl.concat_str(parts))
    return expr.otherwise(pl.lit("recommended for you"))


def load_bestsellers(con, day: date, products: pl.DataFrame, days: int) -> pl.DataFrame:
    """Products by distinct buyers over the last ``days`` days (stand-ins for missing recs)."""
    end = contact_start(day)
    if relation_exists(con, "marts", "fct_order_lines"):
        buyers = read_frame(
            con,
            """
            SELECT product_id, count(DISTINCT customer_id) AS buyers
            FROM marts.fct_order_lines
            WHERE net_quantity > 0 AND ordered_at >= ? AND ordered_at < ?
            GROUP BY product_id
            """,
            [end - timedelta(days=days), end],
        )
    else:
        buyers = pl.DataFrame(schema={"product_id": pl.String, "buyers": pl.Int64})
    return (
        products.filter(pl.col("eligible"))
        .join(buyers, on="product_id", how="left")
        .with_columns(pl.col("buyers").fill_null(0))
        .sort(["buyers", "product_id"], descending=[True, False])
    )


def prior_contacts(con, day: date, config: CampaignConfig) -> dict[str, int]:
    """Audiences each customer is in whose contact day is within ``cap_days - 1`` days.

    The run's own date is left out: its partition is being replaced.
    """
    if not relation_exists(con, ML_SCHEMA, AUDIENCE_TABLE):
        return {}
    reach = config.cap_days - 1
    rows = con.execute(
        f"""
        SELECT customer_id, count(DISTINCT campaign_id) FROM {ML_SCHEMA}.{AUDIENCE_TABLE}
        WHERE logical_date BETWEEN ? AND ? AND logical_date <> ?
        GROUP BY customer_id
        """,
        [day - timedelta(days=reach), day + timedelta(days=reach), day],
    ).fetchall()
    return dict(rows)


def launched_before(con, day: date) -> dict[str, date]:
    """Campaigns whose audience an earlier run built: id -> first launch date."""
    if not relation_exists(con, ML_SCHEMA, AUDIENCE_TABLE):
        return {}
    rows = con.execute(
        f"SELECT campaign_id, min(logical_date) FROM {ML_SCHEMA}.{AUDIENCE_TABLE} "
        "WHERE logical_date < ? GROUP BY campaign_id",
        [day],
    ).fetchall()
    return dict(rows)


def known_segments(con) -> set[str] | None:
    """Segment names of the RFM rule seed (``None`` when the seed is not loaded)."""
    if not relation_exists(con, "seeds", "rfm_segment_rules"):
        return None
    names = {r[0] for r in con.execute("SELECT segment FROM seeds.rfm_segment_rules").fetchall()}
    return names | {"Unclassified"}


# --------------------------------------------------------------------------- affinity


def predicted_affinity(
    model: ScoringModel | None, customer_ids: np.ndarray, products: pl.DataFrame
) -> tuple[list[str], np.ndarray]:
    """Predicted affinity of each customer for each category: ``u . mean(v)``.

    Returns
    -------
    categories : list of str
        Column labels, sorted.
    affinity : numpy.ndarray
        ``(customers, categories)``; NaN rows for customers the model does not know (all
        NaN without a model with item factors).
    """
    categories = sorted(
        products.filter(pl.col("eligible") & pl.col("category").is_not_null())["category"]
        .unique()
        .to_list()
    )
    affinity = np.full((len(customer_ids), len(categories)), np.nan)
    if model is None or not model.has_item_similarity or not categories:
        return categories, affinity
    rows = model.customer_rows(customer_ids)
    cols = model.product_cols(products["product_id"].cast(pl.String).to_numpy())
    usable = products.with_columns(pl.Series("col", cols)).filter(
        (pl.col("col") >= 0) & pl.col("eligible") & pl.col("category").is_not_null()
    )
    centroids = np.zeros((len(categories), model.item_factors.shape[1]), dtype=np.float64)
    present = np.zeros(len(categories), dtype=bool)
    for j, category in enumerate(categories):
        members = usable.filter(pl.col("category") == category)["col"].to_numpy()
        if len(members):
            centroids[j] = model.item_factors[members].mean(axis=0)
            present[j] = True
    known = rows >= 0
    scores = model.user_factors[rows[known]].astype(np.float64) @ centroids.T
    scores[:, ~present] = np.nan
    affinity[known] = np.round(scores, 6)
    return categories, affinity


def _campaign_affinity(
    campaign: Campaign, categories: list[str], affinity: np.ndarray
) -> np.ndarray:
    if campaign.category is not None:
        lookup = {c.lower(): j for j, c in enumerate(categories)}
        j = lookup.get(campaign.category.lower())
        return affinity[:, j] if j is not None else np.full(len(affinity), np.nan)
    if affinity.shape[1] == 0:
        return np.full(len(affinity), np.nan)
    all_nan = np.isnan(affinity).all(axis=1)
    best = np.nanmax(np.where(all_nan[:, None], 0.0, affinity), axis=1)
    return np.where(all_nan, np.nan, best)


# --------------------------------------------------------------------------- selection


def target_mask(campaign: Campaign, eligible: pl.DataFrame, affinity: np.ndarray) -> np.ndarray:
    """Which eligible customers a campaign targets (before cap and max audience).

    Raises
    ------
    CampaignError
        A rule names a column the features table does not have.
    """
    n = eligible.height
    if campaign.target_type == "segment":
        wanted = {s.lower() for s in campaign.segments}
        return eligible["segment"].str.to_lowercase().is_in(wanted).fill_null(False).to_numpy()
    if campaign.target_type == "cluster":
        name = campaign.target_value.strip().lower()
        mask = (eligible["cluster_name"].str.to_lowercase() == name).fill_null(False).to_numpy()
        if not mask.any():
            log.warning(
                "%s: no eligible customer is in cluster %r (cluster names are regenerated "
                "by each segmentation; see published cluster_profiles)",
                campaign.label,
                campaign.target_value,
            )
        return mask
    if campaign.target_type == "category":
        # Customers with a signal for the category: the model knows them, or it is the
        # category they spend most on.
        top = eligible["top_category"] if "top_category" in eligible.columns else None
        spends = (
            (top.str.to_lowercase() == campaign.category.lower()).fill_null(False).to_numpy()
            if top is not None
            else np.zeros(n, dtype=bool)
        )
        return ~np.isnan(affinity) | spends
    if campaign.target_type == "rule":
        rule = parse_rule(campaign.target_value)
        missing = sorted(rule.columns - set(eligible.columns))
        if missing:
            raise CampaignError(
                f"{campaign.label}: rule uses {', '.join(missing)}, which marts.customer_features "
                "does not have: rebuild the marts (dbt) or change the rule"
            )
        return rule.select(eligible).to_numpy()
    raise CampaignError(f"{campaign.label}: unknown target_type {campaign.target_type!r}")


def rank_order(eligible: pl.DataFrame, affinity: np.ndarray) -> np.ndarray:
    """Positions of ``eligible`` best first: affinity (known first), frequency, spend, id."""
    n = eligible.height

    def column(name: str) -> np.ndarray:
        if name not in eligible.columns:
            return np.zeros(n)
        return eligible[name].cast(pl.Float64).fill_null(0.0).to_numpy()

    unknown = np.isnan(affinity)
    score = np.where(unknown, 0.0, affinity)
    # eligible is sorted by customer_id, so the position is the final, unique tie-break.
    return np.lexsort((np.arange(n), -column("monetary"), -column("frequency"), -score, unknown))


def select_audiences(
    campaigns: list[Campaign],
    eligible: pl.DataFrame,
    affinity_of: dict[str, np.ndarray],
    contacts: dict[str, int],
    config: CampaignConfig,
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Pick each campaign's audience under the frequency cap and its max audience.

    Parameters
    ----------
    campaigns : list of Campaign
        Campaigns launching now (any order: they are processed by priority).
    eligible : polars.DataFrame
        Eligible customers (sorted by id) with features, segment and cluster.
    affinity_of : dict
        Campaign id -> predicted affinity per eligible customer (NaN: unknown).
    contacts : dict
        Customer id -> audiences already within the cap window.
    config : CampaignConfig

    Returns
    -------
    selected : dict
        Campaign id -> positions in ``eligible``, best first.
    capped : dict
        Campaign id -> targeted customers left out by the frequency cap.
    """
    ids = eligible["customer_id"].to_list()
    used = np.array([contacts.get(c, 0) for c in ids], dtype=np.int64)
    selected: dict[str, np.ndarray] = {}
    capped: dict[str, int] = {}
    for campaign in sorted(campaigns, key=Campaign.sort_key):
        affinity = affinity_of[campaign.campaign_id]
        targeted = target_mask(campaign, eligible, affinity)
        allowed = targeted & (used < config.frequency_cap)
        order = rank_order(eligible, affinity)
        chosen = order[allowed[order]][: max(0, campaign.max_audience)]
        used[chosen] += 1
        selected[campaign.campaign_id] = chosen
        capped[campaign.campaign_id] = int((targeted & ~allowed).sum())
    return selected, capped


# --------------------------------------------------------------------------- products


def featured_products(
    campaign: Campaign,
    customer_ids: list[str],
    recommendations: pl.DataFrame,
    bestsellers: pl.DataFrame,
    n: int,
) -> dict[str, list[dict[str, Any]]]:
    """Top ``n`` products to feature per customer (campaign category only, if it has one).

    Customers without a matching recommendation get the bestsellers (of the category).
    """
    recs = recommendations.filter(pl.col("customer_id").is_in(customer_ids))
    best = bestsellers
    if campaign.category is not None:
        category = campaign.category.lower()
        recs = recs.filter(pl.col("category").str.to_lowercase() == category)
        best = best.filter(pl.col("category").str.to_lowercase() == category)
    featured: dict[str, list[dict[str, Any]]] = {}
    for (customer,), rows in recs.sort("customer_id", "rank").group_by(
        "customer_id", maintain_order=True
    ):
        featured[customer] = [
            {
                "product_id": r["product_id"],
                "name": r["product_name"],
                "reason": r["reason"],
                "category": r["category"],
                "price": r["price"],
            }
            for r in rows.head(n).iter_rows(named=True)
        ]
    reason = f"popular in {campaign.category}" if campaign.category else "popular right now"
    fallback = [
        {
            "product_id": r["product_id"],
            "name": r["product_name"],
            "reason": reason,
            "category": r["category"],
            "price": r["price"],
        }
        for r in best.head(n).iter_rows(named=True)
    ]
    return {c: featured.get(c) or fallback for c in customer_ids}


# --------------------------------------------------------------------------- stage


def audience_rows(
    campaign: Campaign,
    members: pl.DataFrame,
    affinity: np.ndarray,
    products: dict[str, list[dict[str, Any]]],
    day: date,
    config: CampaignConfig,
    copy: CopyContext,
) -> pl.DataFrame:
    """The audience rows of one campaign (columns of ``ml.campaign_audiences``)."""
    ids = members["customer_id"].to_list()
    groups = assign_groups(campaign.campaign_id, ids, campaign.control_share, config.salt)
    written = campaign_copy(campaign, members, list(groups), products, copy, config.salt)
    messages = written.messages
    return pl.DataFrame(
        {
            "campaign_id": [campaign.campaign_id] * len(ids),
            "customer_id": ids,
            "assignment_group": list(groups),
            "rank": np.arange(1, len(ids) + 1, dtype=np.int32),
            "affinity": pl.Series(affinity, dtype=pl.Float64).fill_nan(None),
            "segment": members["segment"],
            "cluster_name": members["cluster_name"],
            "product_ids": [[p["product_id"] for p in products[c]] for c in ids],
            "product_names": [[p["name"] for p in products[c]] for c in ids],
            "message": messages,
            "channel": [campaign.channel] * len(ids),
            "contact_date": [day + timedelta(days=1)] * len(ids),
            "subject": written.subjects,
            "copy_writer": written.arms,
        },
        schema_overrides={
            "message": pl.String,
            "subject": pl.String,
            "copy_writer": pl.String,
            "segment": pl.String,
            "cluster_name": pl.String,
            "product_ids": pl.List(pl.String),
            "product_names": pl.List(pl.String),
        },
    )


def _empty_audiences() -> pl.DataFrame:
    types = {
        "VARCHAR": pl.String,
        "INTEGER": pl.Int32,
        "DOUBLE": pl.Float64,
        "DATE": pl.Date,
        "VARCHAR[]": pl.List(pl.String),
    }
    return pl.DataFrame(
        schema={k: types[v] for k, v in AUDIENCE_COLUMNS.items() if k != "logical_date"}
    )


def build_audiences(
    logical_date: date | datetime | str,
    *,
    config: CampaignConfig | None = None,
    model: ScoringModel | None = None,
) -> AudienceReport:
    """Build and store the audiences of the campaigns launching after ``logical_date``.

    Idempotent: re-running a date replaces its partition of ``ml.campaign_audiences``;
    audiences built by earlier dates stay frozen.

    Parameters
    ----------
    logical_date : date, datetime or str
        The run's logical date; the marts must be built as of it.
    config : CampaignConfig, optional
    model : ScoringModel, optional
        Source of the predicted affinity (default: the MLflow ``champion``; without one
        customers are ranked by frequency and spend).

    Returns
    -------
    AudienceReport

    Raises
    ------
    CampaignError
        A launching campaign is invalid (the message names each one and what to fix).
    """
    config = config or CampaignConfig()
    started = time.perf_counter()
    day = to_date(logical_date)
    with connect() as con:
        ensure_audience_columns(con)
        forget_erased(con)
        campaigns = load_campaigns(con)
        earlier = launched_before(con, day)
        due = [c for c in campaigns if c.launch_due(day) and c.campaign_id not in earlier]
        frame, sizes, capped, version = _empty_audiences(), {}, {}, None
        if due:
            products = load_products(con)
            validate_campaigns(
                due,
                known_segments=known_segments(con),
                known_categories=set(products["category"].drop_nulls().to_list()),
            )
            frame, sizes, capped, version = _launch(con, day, due, products, config, model)
        rows = write_partition(
            con,
            AUDIENCE_TABLE,
            frame,
            day,
            columns=AUDIENCE_COLUMNS,
            order_by="campaign_id, rank",
            keep_dates=None,  # frozen audiences are measured weeks later
        )
        seconds = time.perf_counter() - started
        report = AudienceReport(
            day, [c.campaign_id for c in due], rows, sizes, capped, version, seconds
        )
        record_stage(
            con,
            day,
            "campaigns",
            rows=rows,
            seconds=seconds,
            detail={"launched": report.launched, "sizes": sizes, "capped": capped},
        )
    log.info("%s", report.summary())
    return report


def _launch(
    con: duckdb.DuckDBPyConnection,
    day: date,
    due: list[Campaign],
    products: pl.DataFrame,
    config: CampaignConfig,
    model: ScoringModel | None,
) -> tuple[pl.DataFrame, dict, dict, str | None]:
    eligible = load_eligible(con, day)
    if model is None:
        model = _champion_or_none()
    categories, affinity = predicted_affinity(
        model, eligible["customer_id"].to_numpy().astype(str), products
    )
    affinity_of = {c.campaign_id: _campaign_affinity(c, categories, affinity) for c in due}
    selected, capped = select_audiences(
        due, eligible, affinity_of, prior_contacts(con, day, config), config
    )
    members = sorted({c for p in selected.values() for c in eligible["customer_id"][p]})
    recommendations = load_recommendations(con, day, products, members)
    bestsellers = load_bestsellers(con, day, products, config.popularity_days)
    copy = CopyContext.for_launch(con, products["product_name"].drop_nulls().to_list(), day)
    frames, sizes = [], {}
    for campaign in sorted(due, key=lambda c: c.campaign_id):
        positions = selected[campaign.campaign_id]
        members = eligible[positions]
        featured = featured_products(
            campaign,
            members["customer_id"].to_list(),
            recommendations,
            bestsellers,
            config.featured_products,
        )
        rows = audience_rows(
            campaign,
            members,
            affinity_of[campaign.campaign_id][positions],
            featured,
            day,
            config,
            copy,
        )
        frames.append(rows)
        sizes[campaign.campaign_id] = dict(Counter(rows["assignment_group"].to_list()))
    frame = pl.concat(frames) if frames else _empty_audiences()
    return frame, sizes, capped, model.version if model is not None else None


def _champion_or_none() -> ScoringModel | None:
    from ml.score import load_scoring_model

    try:
        return load_scoring_model()
    except LookupError as error:
        log.warning("no champion model (%s): audiences are ranked by frequency and spend", error)
        return None
