"""How every campaign stage opens the warehouse (launch, replay, measurement)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from ml.campaigns.definitions import Campaign, load_campaigns
from ml.campaigns.messaging import ensure_audience_columns
from ml.warehouse import connect


@contextmanager
def campaign_session() -> Iterator[tuple[duckdb.DuckDBPyConnection, list[Campaign]]]:
    """A read-write warehouse connection and the campaigns defined in it.

    ``ml.campaign_audiences`` is brought up to the current columns first (an audience
    table written before the copy columns existed gets them).
    """
    with connect() as con:
        ensure_audience_columns(con)
        yield con, load_campaigns(con)
