"""The input contract: entities the landing zone accepts, their typed columns and rules.

One declaration serves the generator, the importers, the ingest validator and the raw
DDL, so a column added here reaches all of them. See ``../shared/DESIGN.md``.

Conventions
-----------
* Column names are the canonical ones; importers map public formats onto them.
* ``required`` columns must be present in the file header; ``nullable=False`` columns must
  also be non-empty on every row.
* Timestamps are stored as naive UTC (``TIMESTAMP``). A value with an offset or a zone
  name (``2026-10-30 23:30:00-05:00``, ``...Z``, ``... Europe/Paris``) is converted to UTC;
  a naive value is read in the shop's zone (``AFFINITY_SHOP_TIMEZONE``, default UTC); a
  zone that cannot be read is quarantined (``unparseable_time_zone``). Money is in the
  shop's currency (``DOUBLE``).
* Documented bounds (:data:`MAX_QUANTITY`, :data:`MAX_PRICE`, :data:`MIN_TIMESTAMP`,
  :data:`MAX_TIMESTAMP`): a value outside them is quarantined (``value_out_of_range``), and
  a number that is not finite (``inf``, ``NaN``, ``1e400``) too (``non_finite_number``), so
  no single row can break the night's arithmetic (sums, shares, date differences).
* Unknown prices: ``order_lines.unit_price`` may be empty (the export does not know
  it). The line loads and counts as a purchase (quantity, recommendations, RFM
  frequency); its ``line_amount`` and ``net_revenue`` are NULL, and every money sum adds
  the priced lines only (a lower bound, with ``fct_orders.unpriced_lines`` saying how many
  were left out). A price is never invented.
* Signed quantities: an order line with a negative quantity is a reversal (a cancellation
  or return document such as an Online Retail ``C`` invoice). A cancelled or returned
  order with positive quantities never counted. dbt nets both out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Event types the ingest accepts; anything else is quarantined as `unknown_event_type`.
EVENT_TYPES = ("view", "add_to_cart", "remove_from_cart", "purchase", "wishlist")
ORDER_STATUSES = ("placed", "cancelled", "returned")
CAMPAIGN_TARGET_TYPES = ("segment", "cluster", "category", "rule", "review_sentiment")
# Longest text value accepted in any column; longer ones are quarantined (`text_too_long`).
MAX_TEXT_CHARS = 10_000
# Largest quantity of one order line, either sign (`value_out_of_range` beyond). Real shops
# stay far below: Online Retail II's largest line is 80,995 units.
MAX_QUANTITY = 1_000_000
# Highest price of one unit in the shop's currency (`value_out_of_range` above). With
# MAX_QUANTITY a line is worth at most 1e12: sums over millions of lines stay finite.
MAX_PRICE = 1_000_000.0
# Every timestamp lies in [MIN_TIMESTAMP, MAX_TIMESTAMP) (`value_out_of_range` outside):
# keeps date differences small and turns DuckDB's 'infinity' timestamps away.
MIN_TIMESTAMP = "1970-01-01 00:00:00"
MAX_TIMESTAMP = "2100-01-01 00:00:00"


@dataclass(frozen=True)
class Column:
    """One canonical column of an entity.

    Parameters
    ----------
    name : str
        Canonical column name.
    dtype : str
        DuckDB type of the typed raw column (VARCHAR, BIGINT, INTEGER, DOUBLE,
        BOOLEAN, TIMESTAMP).
    nullable : bool
        Whether an empty value is allowed.
    required : bool
        Whether the column must be present in the file. Optional columns absent from a
        file load as NULL (or ``default``).
    pii : bool
        Personal data: never leaves dbt staging, never published, never logged.
    default : str or None
        SQL literal used when an optional column is absent from the file.
    bounds : tuple of (float, float) or None
        Inclusive ``(low, high)`` a numeric value must lie in (`value_out_of_range`).
    """

    name: str
    dtype: str
    nullable: bool = True
    required: bool = True
    pii: bool = False
    default: str | None = None
    bounds: tuple[float, float] | None = None


@dataclass(frozen=True)
class ForeignKey:
    """A reference from ``column`` to ``parent.parent_column``; NULL never violates it."""

    column: str
    parent: str
    parent_column: str


@dataclass(frozen=True)
class Entity:
    """A landing-zone entity: its columns, primary key and references.

    Parameters
    ----------
    name : str
        Entity name; also the raw table name (``raw.<name>``) and the landing file stem.
    columns : tuple of Column
        Canonical columns in file order.
    primary_key : tuple of str
        Columns that identify a row; duplicates are quarantined (`duplicate_key`).
    foreign_keys : tuple of ForeignKey
        References checked against rows already loaded (`orphan_reference`).
    time_columns : tuple of str
        Timestamps that must not lie in the future (`future_timestamp`).
    """

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[ForeignKey, ...] = field(default_factory=tuple)
    time_columns: tuple[str, ...] = field(default_factory=tuple)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def pii_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.pii]

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"entity {self.name!r} has no column {name!r}")


C = Column

# References to a parent's key by the column its children share with it (one home each).
TO_CUSTOMER = ForeignKey("customer_id", "customers", "customer_id")
TO_PRODUCT = ForeignKey("product_id", "products", "product_id")
TO_ORDER = ForeignKey("order_id", "orders", "order_id")

CUSTOMERS = Entity(
    "customers",
    (
        C("customer_id", "VARCHAR", nullable=False),
        C("email", "VARCHAR", pii=True),
        C("first_name", "VARCHAR", pii=True),
        C("country", "VARCHAR"),
        C("signed_up_at", "TIMESTAMP"),
        C("marketing_opt_in", "BOOLEAN", required=False, default="false"),
    ),
    primary_key=("customer_id",),
    time_columns=("signed_up_at",),
)

PRODUCTS = Entity(
    "products",
    (
        C("product_id", "VARCHAR", nullable=False),
        C("name", "VARCHAR"),
        C("description", "VARCHAR", required=False),
        C("category", "VARCHAR", required=False),
        C("brand", "VARCHAR", required=False),
        # No lower bound here: a negative price is its own rule (`negative_price`).
        C("price", "DOUBLE", bounds=(float("-inf"), MAX_PRICE)),
        C("is_active", "BOOLEAN", required=False, default="true"),
        # False for codes that are not merchandise (postage, fees, adjustments):
        # kept for revenue reconciliation, excluded from models.
        C("is_product", "BOOLEAN", required=False, default="true"),
        C("first_seen_at", "TIMESTAMP", required=False),
    ),
    primary_key=("product_id",),
    time_columns=("first_seen_at",),
)

ORDERS = Entity(
    "orders",
    (
        C("order_id", "VARCHAR", nullable=False),
        C("customer_id", "VARCHAR"),  # NULL: guest checkout
        C("ordered_at", "TIMESTAMP", nullable=False),
        C("status", "VARCHAR", nullable=False),
        C("channel", "VARCHAR", required=False),
        C("country", "VARCHAR", required=False),
    ),
    primary_key=("order_id",),
    foreign_keys=(TO_CUSTOMER,),
    time_columns=("ordered_at",),
)

ORDER_LINES = Entity(
    "order_lines",
    (
        C("order_id", "VARCHAR", nullable=False),
        C("line_no", "INTEGER", nullable=False),
        C("product_id", "VARCHAR", nullable=False),
        C("quantity", "INTEGER", nullable=False, bounds=(-MAX_QUANTITY, MAX_QUANTITY)),
        # NULL: the price is unknown (an Amazon review export without --meta). The line
        # still counts as a purchase; money sums leave it out (see dbt fct_orders).
        C("unit_price", "DOUBLE", bounds=(float("-inf"), MAX_PRICE)),
    ),
    primary_key=("order_id", "line_no"),
    foreign_keys=(TO_ORDER, TO_PRODUCT),
)

EVENTS = Entity(
    "events",
    (
        C("event_id", "VARCHAR", nullable=False),
        C("customer_id", "VARCHAR"),  # NULL: anonymous visitor
        C("session_id", "VARCHAR", nullable=False),
        C("product_id", "VARCHAR"),
        C("event_type", "VARCHAR", nullable=False),
        C("occurred_at", "TIMESTAMP", nullable=False),
    ),
    primary_key=("event_id",),
    foreign_keys=(TO_CUSTOMER, TO_PRODUCT),
    time_columns=("occurred_at",),
)

REVIEWS = Entity(
    "reviews",
    (
        C("review_id", "VARCHAR", nullable=False),
        C("customer_id", "VARCHAR", nullable=False),
        C("product_id", "VARCHAR", nullable=False),
        C("rating", "INTEGER", nullable=False),
        C("title", "VARCHAR"),
        C("body", "VARCHAR"),
        C("created_at", "TIMESTAMP", nullable=False),
    ),
    primary_key=("review_id",),
    foreign_keys=(TO_CUSTOMER, TO_PRODUCT),
    time_columns=("created_at",),
)

CAMPAIGNS = Entity(
    "campaigns",
    (
        C("campaign_id", "VARCHAR", nullable=False),
        C("name", "VARCHAR", nullable=False),
        C("channel", "VARCHAR", nullable=False),
        # target_type: segment (RFM segment names, `|`-separated), cluster (cluster name),
        # category (a product category), rule (e.g. `recency_days<=30 and frequency>=2`),
        # review_sentiment (`negative`: customers with a negative review in the last 30
        # days, for service outreach).
        C("target_type", "VARCHAR", nullable=False),
        C("target_value", "VARCHAR", nullable=False),
        C("starts_at", "TIMESTAMP", nullable=False),
        C("ends_at", "TIMESTAMP", nullable=False),
        C("max_audience", "INTEGER", nullable=False),
        C("control_share", "DOUBLE", nullable=False),
        C("priority", "INTEGER", required=False, default="0"),
        C("message_template", "VARCHAR", required=False),
        # Copy settings (ml/campaigns/copy): the goal (win_back, loyalty, cross_sell,
        # replenish, welcome, new_arrivals, thank_you; empty: inferred), the offer in words,
        # its discount (percent; generated copy may state no other), and the writer(s):
        # builtin, llm, template, or two of them `|`-separated for an A/B of copy.
        C("goal", "VARCHAR", required=False),
        C("offer", "VARCHAR", required=False),
        C("discount_percent", "DOUBLE", required=False),
        C("copy_writers", "VARCHAR", required=False),
    ),
    primary_key=("campaign_id",),
)

ERASURE_REQUESTS = Entity(
    "erasure_requests",
    (
        C("customer_id", "VARCHAR", nullable=False),
        C("requested_at", "TIMESTAMP", nullable=False),
    ),
    primary_key=("customer_id",),
    time_columns=("requested_at",),
)

# Load order: parents before children so references resolve within one batch.
ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        CUSTOMERS,
        PRODUCTS,
        ORDERS,
        ORDER_LINES,
        EVENTS,
        REVIEWS,
        CAMPAIGNS,
        ERASURE_REQUESTS,
    )
}

# Columns the ingest adds to every raw table (lineage).
LINEAGE_COLUMNS = (
    ("_source_file", "VARCHAR"),
    ("_source_row", "BIGINT"),
    ("_batch_id", "VARCHAR"),
)


def raw_table_ddl(entity: Entity, schema: str = "raw") -> str:
    """Return the ``CREATE TABLE IF NOT EXISTS`` statement of an entity's raw table."""
    cols = [f"{c.name} {c.dtype}" for c in entity.columns]
    cols += [f"{name} {dtype}" for name, dtype in LINEAGE_COLUMNS]
    return f"CREATE TABLE IF NOT EXISTS {schema}.{entity.name} ({', '.join(cols)})"


QUARANTINE_DDL = """
CREATE TABLE IF NOT EXISTS raw.quarantine (
    entity VARCHAR,
    source_file VARCHAR,
    source_row BIGINT,
    rule VARCHAR,
    detail VARCHAR,
    raw_values VARCHAR,
    _batch_id VARCHAR
)
"""

LOAD_MANIFEST_DDL = """
CREATE TABLE IF NOT EXISTS raw.load_manifest (
    source_file VARCHAR,
    entity VARCHAR,
    path VARCHAR,
    checksum VARCHAR,
    received_rows BIGINT,
    loaded_rows BIGINT,
    quarantined_rows BIGINT,
    loaded_at TIMESTAMP,
    _batch_id VARCHAR,
    is_current BOOLEAN,
    warnings VARCHAR
)
"""
