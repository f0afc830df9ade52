"""Ground truth for campaign measurement: campaigns with a known effect on purchases.

With ``generate_shop(..., campaign_uplift=u)`` the shop gets two extra campaigns over the
same window (see :func:`ground_truth_campaigns`):

* the **uplift** campaign: each treatment customer *responds* with probability ``u`` and
  then makes one extra, campaign-driven purchase during the campaign;
* the **placebo** campaign: nothing happens (true effect zero).

"Treatment" is decided by the very hash the campaign step assigns groups with
(:func:`ml.campaigns.assignment.is_control`), and it is independent of everything the
audience selection looks at, so whichever opted-in customers the campaign step selects,
its treatment group carries the effect and its control group does not.

The effect on the conversion rate of an audience ``A`` (the share of ``A`` who buy in the
window) is known exactly from ``_campaign_truth.parquet``: a customer's purchase is
caused by the campaign when they respond and would not have bought anyway, so

    true lift(A) = mean over A of (responds and not baseline_converted)

(about ``u * (1 - baseline conversion rate)``). ``baseline_converted`` is whether the
customer bought in the window in the shop without any ground-truth campaign (the same
seed without ``campaign_uplift``: the baseline orders are kept exactly).

:func:`ml.datagen.experiment_sim.simulate_experiment` is the light version for statistics
tests: outcomes of one campaign drawn directly, with exactly known effects.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from ml.campaigns.assignment import CONTROL, DEFAULT_SALT, TREATMENT, is_control
from ml.datagen.activity import (
    Activity,
    Orders,
    Sessions,
    draw_quantities,
    draw_unit_prices,
)
from ml.datagen.catalog import Catalog
from ml.datagen.common import DAY, IdTables, Period, rank_within_runs, timestamps
from ml.datagen.people import Customers, draw_taste_category
from ml.datagen.vocab import CHANNELS
from ml.ingest.contract import ORDER_STATUSES

CAMPAIGN_TRUTH_FILE = "_campaign_truth.parquet"
# The ground-truth window: it starts this many days before the end of the shop ...
TRUTH_STARTS_DAYS_BEFORE_END = 35
TRUTH_DURATION_DAYS = 14  # ... and lasts two weeks, ending three weeks before the end.
TRUTH_MIN_DAYS = TRUTH_STARTS_DAYS_BEFORE_END + 7  # a week of history before it starts
TRUTH_HOUR = 9
# A campaign-driven visit: view, cart after 30 s, checkout after 3 minutes.
_CART_GAP, _REMOVE_GAP, _SPAN = 30, 60, 180
_PLACED = ORDER_STATUSES.index("placed")

TRUTH_SCHEMA = {
    "campaign_id": pl.Utf8,
    "customer_id": pl.Utf8,
    "true_uplift": pl.Float64,
    "window_start": pl.Datetime("us"),
    "window_end": pl.Datetime("us"),
    "assignment_group": pl.Utf8,
    "baseline_converted": pl.Boolean,
    "responds": pl.Boolean,
}


@dataclass(frozen=True)
class GroundTruthCampaign:
    """A campaign whose true effect the generator knows.

    Parameters
    ----------
    campaign_id, name : str
        Identity (ids continue the generated campaigns' numbering).
    true_uplift : float
        Probability that a treatment customer responds with an extra purchase.
    control_share : float
        Share held out as control.
    max_audience : int
        Audience cap (large: the whole opted-in base is targeted).
    priority : int
        Launch priority (above the generated campaigns).
    """

    campaign_id: str
    name: str
    true_uplift: float
    control_share: float
    max_audience: int
    priority: int
    channel: str = "email"
    target_type: str = "rule"
    # Every customer the marts know (tenure is counted from the first sighting).
    target_value: str = "tenure_days>=0"
    message_template: str = (
        "Hi {{first_name}}, picked for you: {{top_product_name}} ({{top_product_reason}})."
    )
    goal: str = "recommend"
    copy_writers: str = "builtin"

    def window(self, period: Period) -> tuple[int, int]:
        """``[start, end)`` of the campaign, epoch seconds."""
        start = period.end - TRUTH_STARTS_DAYS_BEFORE_END * DAY + TRUTH_HOUR * 3600
        return start, start + TRUTH_DURATION_DAYS * DAY


def ground_truth_campaigns(
    uplift: float, customers: int, first_number: int
) -> tuple[GroundTruthCampaign, ...]:
    """The uplift campaign and its placebo, numbered from ``CMP<first_number>``.

    Raises
    ------
    ValueError
        ``uplift`` outside ``[0, 1]``.
    """
    if not 0.0 <= uplift <= 1.0:
        raise ValueError(f"campaign_uplift must be within [0, 1] (got {uplift})")
    return (
        GroundTruthCampaign(
            f"CMP{first_number:03d}",
            f"Ground truth: uplift {uplift:g}",
            float(uplift),
            control_share=0.5,
            max_audience=customers,
            priority=10,
        ),
        GroundTruthCampaign(
            f"CMP{first_number + 1:03d}",
            "Ground truth: placebo",
            0.0,
            control_share=0.5,
            max_audience=customers,
            priority=9,
        ),
    )


def ground_truth_frame(specs: tuple[GroundTruthCampaign, ...], period: Period) -> pl.DataFrame:
    """The ``campaigns`` entity rows of the ground-truth campaigns."""
    windows = [s.window(period) for s in specs]
    return pl.DataFrame(
        {
            "campaign_id": [s.campaign_id for s in specs],
            "name": [s.name for s in specs],
            "channel": [s.channel for s in specs],
            "target_type": [s.target_type for s in specs],
            "target_value": [s.target_value for s in specs],
            "starts_at": timestamps(np.array([w[0] for w in windows], dtype=np.int64)),
            "ends_at": timestamps(np.array([w[1] for w in windows], dtype=np.int64)),
            "max_audience": [s.max_audience for s in specs],
            "control_share": [s.control_share for s in specs],
            "priority": [s.priority for s in specs],
            "message_template": [s.message_template for s in specs],
            "goal": [s.goal for s in specs],
            "offer": [None for _ in specs],
            "discount_percent": [None for _ in specs],
            "copy_writers": [s.copy_writers for s in specs],
        },
        schema_overrides={"offer": pl.String, "discount_percent": pl.Float64},
    )


def apply_uplift(
    rng: np.random.Generator,
    activity: Activity,
    customers: Customers,
    catalog: Catalog,
    period: Period,
    specs: tuple[GroundTruthCampaign, ...],
    ids: IdTables,
    salt: str = DEFAULT_SALT,
) -> tuple[Activity, pl.DataFrame]:
    """Add the campaign-driven purchases; return the new activity and the truth table.

    Baseline sessions, views and orders are kept exactly (statuses, prices and quantities
    included); only their positions, hence their generated ids, shift around the added
    ones.

    Returns
    -------
    activity : Activity
    truth : polars.DataFrame
        One row per campaign x opted-in customer signed up before it starts (columns
        :data:`TRUTH_SCHEMA`).
    """
    orders = activity.orders
    buyer = activity.sessions.customer[orders.session]
    placed = (orders.status == _PLACED) & (buyer >= 0)
    truth, added_customer, added_start = [], [], []
    for spec in specs:
        start, end = spec.window(period)
        end = min(end, period.end)
        eligible = np.flatnonzero(customers.opt_in & (customers.signed_up < start))
        customer_ids = ids.customers.gather(eligible).to_list()
        control = is_control(spec.campaign_id, customer_ids, spec.control_share, salt)
        responds = rng.random(len(eligible)) < spec.true_uplift
        in_window = placed & (orders.ordered_at >= start) & (orders.ordered_at < end)
        baseline = np.isin(eligible, buyer[in_window])
        chosen = eligible[responds & ~control]
        latest = max(start + 1, end - _SPAN - 1)
        added_customer.append(chosen)
        added_start.append(rng.integers(start, latest, size=len(chosen), dtype=np.int64))
        truth.append(
            pl.DataFrame(
                {
                    "campaign_id": [spec.campaign_id] * len(eligible),
                    "customer_id": customer_ids,
                    "true_uplift": [spec.true_uplift] * len(eligible),
                    "window_start": timestamps(np.full(len(eligible), start, dtype=np.int64)),
                    "window_end": timestamps(np.full(len(eligible), end, dtype=np.int64)),
                    "assignment_group": np.where(control, CONTROL, TREATMENT).tolist(),
                    "baseline_converted": baseline,
                    "responds": responds,
                },
                schema=TRUTH_SCHEMA,
            )
        )
    who = np.concatenate(added_customer).astype(np.int64)
    when = np.concatenate(added_start)
    frame = pl.concat(truth) if truth else pl.DataFrame(schema=TRUTH_SCHEMA)
    if len(who) == 0:
        return activity, frame
    return _add_purchases(rng, activity, customers, catalog, who, when), frame


def _inverse(permutation: np.ndarray) -> np.ndarray:
    inverse = np.empty_like(permutation)
    inverse[permutation] = np.arange(len(permutation))
    return inverse


def _add_purchases(
    rng: np.random.Generator,
    activity: Activity,
    customers: Customers,
    catalog: Catalog,
    who: np.ndarray,
    when: np.ndarray,
) -> Activity:
    """One single-product purchasing session per (customer, start), merged in order."""
    old, m = activity.sessions, len(who)
    category = draw_taste_category(rng, customers, who, catalog)
    product = catalog.by_category.draw(category, rng).astype(np.int32)
    unlaunched = np.flatnonzero(catalog.first_seen[product] > when)
    product[unlaunched] = catalog.established_by_category.draw(category[unlaunched], rng)
    channel_share = np.array([s for _, s in CHANNELS])
    channel = rng.choice(len(CHANNELS), size=m, p=channel_share).astype(old.channel.dtype)

    # Sessions: same (start, customer) ordering as draw_sessions; the sort is stable, so
    # the baseline sessions keep their relative order.
    added = Sessions(
        customer=who.astype(old.customer.dtype),
        start=when.astype(old.start.dtype),
        view_count=np.ones(m, dtype=old.view_count.dtype),
        channel=channel,
        checks_out=np.ones(m, dtype=bool),
        span=np.full(m, _SPAN, dtype=old.span.dtype),
    )
    merged = {
        f: np.concatenate([getattr(old, f), getattr(added, f)]) for f in old.__dataclass_fields__
    }
    session_order = np.lexsort((merged["customer"], merged["start"]))
    new_session = _inverse(session_order)
    sessions = Sessions(**{f: values[session_order] for f, values in merged.items()})

    # Views: session-major, the baseline views keep their order within each session.
    views = activity.views
    n_views = len(views)
    view_session = new_session[np.concatenate([views.session, len(old) + np.arange(m)])]
    view_order = np.argsort(view_session, kind="stable")
    new_view = _inverse(view_order)
    ones, zeros = np.ones(m, dtype=bool), np.zeros(m, dtype=bool)
    extra = {
        "offset": np.zeros(m, dtype=views.offset.dtype),
        "cart_gap": np.full(m, _CART_GAP, dtype=views.cart_gap.dtype),
        "remove_gap": np.full(m, _REMOVE_GAP, dtype=views.remove_gap.dtype),
        "product": product,
        "staple": zeros,
        "cart": ones,
        "purchase": ones,
        "remove": zeros,
        "wishlist": zeros,
    }
    views = replace(
        views,
        session=view_session[view_order].astype(views.session.dtype),
        **{
            f: np.concatenate([getattr(views, f), values]).astype(getattr(views, f).dtype)[
                view_order
            ]
            for f, values in extra.items()
        },
    )

    # Orders: time order as place_orders sorts them; lines grouped by order, view order.
    orders = activity.orders
    k = len(orders)
    order_session = np.concatenate(
        [new_session[orders.session], new_session[len(old) + np.arange(m)]]
    )
    ordered_at = np.concatenate([orders.ordered_at, when + _SPAN])
    by_time = np.lexsort((order_session, ordered_at))
    new_order = _inverse(by_time)
    line_order = new_order[np.concatenate([orders.line_order, k + np.arange(m)])]
    line_view = new_view[np.concatenate([orders.line_view, n_views + np.arange(m)])]
    by_line = np.lexsort((line_view, line_order))
    quantity = np.concatenate([orders.quantity, draw_quantities(rng, catalog.consumable[product])])
    unit_price = np.concatenate([orders.unit_price, draw_unit_prices(rng, catalog.price[product])])
    line_order = line_order[by_line]
    merged_orders = Orders(
        session=order_session[by_time],
        ordered_at=ordered_at[by_time],
        status=np.concatenate([orders.status, np.full(m, _PLACED, dtype=orders.status.dtype)])[
            by_time
        ],
        channel=np.concatenate([orders.channel, channel])[by_time],
        country=np.concatenate([orders.country, customers.country[who]])[by_time],
        line_order=line_order,
        line_no=(rank_within_runs(np.bincount(line_order, minlength=k + m)) + 1).astype(np.int32),
        line_view=line_view[by_line],
        quantity=quantity[by_line].astype(orders.quantity.dtype),
        unit_price=unit_price[by_line],
    )
    return Activity(sessions=sessions, views=views, orders=merged_orders)


def write_truth(out, truth: pl.DataFrame | None) -> None:
    """Write ``_campaign_truth.parquet``, or remove a stale one when there is no truth."""
    from ml.ingest.files import write_parquet_atomically

    path = out / CAMPAIGN_TRUTH_FILE
    if truth is None:
        path.unlink(missing_ok=True)
        return
    write_parquet_atomically(truth, path)


def true_lift(truth: pl.DataFrame, campaign_id: str, customer_ids: list[str]) -> float:
    """The exact effect of a ground-truth campaign on the conversion rate of an audience.

    Parameters
    ----------
    truth : polars.DataFrame
        The generator's ``_campaign_truth.parquet``.
    campaign_id : str
    customer_ids : list of str
        The audience (treatment and control).
    """
    rows = truth.filter(
        (pl.col("campaign_id") == campaign_id) & pl.col("customer_id").is_in(customer_ids)
    )
    if rows.height != len(set(customer_ids)):
        raise ValueError(
            f"{len(set(customer_ids)) - rows.height} audience customers of {campaign_id} are "
            "not in the truth table (only opted-in customers signed up before it started are)"
        )
    return float((rows["responds"] & ~rows["baseline_converted"]).mean())
