"""Time zones (issue 19, finding 4): nothing is shifted silently.

A timestamp with an offset or a zone name is converted to UTC (the warehouse's zone); a
naive one is read in the shop's zone (``AFFINITY_SHOP_TIMEZONE``, default UTC); a zone that
cannot be read is quarantined (``unparseable_time_zone``). CSV and Parquet alike.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml.config import paths
from ml.ingest import ingest
from ml.ingest.timestamps import SHOP_TIMEZONE_ENV

NOW = datetime(2026, 11, 2, 12, 0, 0)
ORDERS_HEADER = "order_id,customer_id,ordered_at,status\n"


def query(sql: str) -> list[tuple]:
    con = duckdb.connect(str(paths().warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def write_orders(landing: Path, *stamps: str) -> Path:
    landing.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"O{n},,{stamp},placed\n" for n, stamp in enumerate(stamps, 1))
    (landing / "orders.csv").write_text(ORDERS_HEADER + rows)
    return landing


def ordered_at() -> dict[str, datetime]:
    return dict(query("select order_id, ordered_at from raw.orders"))


def test_offsets_and_zone_names_are_converted_to_utc(tmp_path: Path) -> None:
    write_orders(
        tmp_path / "land",
        "2026-10-30 23:30:00-05:00",  # the example: 04:30 UTC, not 23:30
        "2026-10-30T23:30:00Z",
        "2026-10-30 23:30:00+0530",
        "2026-10-30 23:30:00 Europe/Paris",
        "2026-10-30 23:30:00 -05:00",
    )
    ingest(tmp_path / "land", now=NOW)
    assert ordered_at() == {
        "O1": datetime(2026, 10, 31, 4, 30),
        "O2": datetime(2026, 10, 30, 23, 30),
        "O3": datetime(2026, 10, 30, 18, 0),
        "O4": datetime(2026, 10, 30, 22, 30),  # CET in late October: UTC+1
        "O5": datetime(2026, 10, 31, 4, 30),
    }


def test_naive_timestamps_are_read_in_the_shops_zone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_orders(tmp_path / "land", "2026-10-30 23:30:00", "2026-07-01", "2026-10-30 08:00:00Z")
    monkeypatch.setenv(SHOP_TIMEZONE_ENV, "America/New_York")
    ingest(tmp_path / "land", now=NOW)
    assert ordered_at() == {
        "O1": datetime(2026, 10, 31, 3, 30),  # EDT: UTC-4
        "O2": datetime(2026, 7, 1, 4, 0),
        "O3": datetime(2026, 10, 30, 8, 0),  # an explicit zone wins over the shop's
    }


def test_naive_timestamps_stay_as_they_are_by_default(tmp_path: Path) -> None:
    write_orders(tmp_path / "land", "2026-10-30 23:30:00")
    ingest(tmp_path / "land", now=NOW)
    assert ordered_at() == {"O1": datetime(2026, 10, 30, 23, 30)}


def test_an_unreadable_zone_is_quarantined(tmp_path: Path) -> None:
    write_orders(
        tmp_path / "land",
        "2026-10-30 23:30:00 Mars/Olympus",
        "2026-10-30 23:30:00+25:00",  # beyond any real offset
        "2026-10-30 23:30:00",
        "yesterday at noon",
    )
    report = ingest(tmp_path / "land", now=NOW)
    assert query("select source_row, rule, detail from raw.quarantine order by 1") == [
        (1, "unparseable_time_zone", "ordered_at"),
        (2, "unparseable_time_zone", "ordered_at"),
        (4, "unparseable_timestamp", "ordered_at"),
    ]
    (orders,) = report.files
    assert orders.received_rows == 4 == orders.loaded_rows + orders.quarantined_rows


def test_a_shop_zone_that_is_not_a_zone_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_orders(tmp_path / "land", "2026-10-30 23:30:00")
    monkeypatch.setenv(SHOP_TIMEZONE_ENV, "Europe/Pariss")
    with pytest.raises(ValueError, match=f"{SHOP_TIMEZONE_ENV}='Europe/Pariss' is not a time zone"):
        ingest(tmp_path / "land", now=NOW)


def test_parquet_instants_are_converted_and_naive_columns_use_the_shops_zone(
    tmp_path: Path,
) -> None:
    landing = tmp_path / "land"
    landing.mkdir()
    new_york = timezone(timedelta(hours=-4))
    instants = pa.array(
        [datetime(2026, 10, 30, 23, 30, tzinfo=new_york)],
        type=pa.timestamp("us", tz="America/New_York"),
    )
    pq.write_table(
        pa.table(
            {
                "order_id": ["O1"],
                "customer_id": [None],
                "ordered_at": instants,
                "status": ["placed"],
            }
        ),
        landing / "orders.parquet",
    )
    naive = pa.array([datetime(2026, 10, 30, 23, 30)], type=pa.timestamp("ms"))
    pq.write_table(
        pa.table({"customer_id": ["C1"], "requested_at": naive}),
        landing / "erasure_requests.parquet",
    )
    ingest(landing, now=NOW, timezone="Asia/Tokyo")
    assert ordered_at() == {"O1": datetime(2026, 10, 31, 3, 30)}
    assert query("select requested_at from raw.erasure_requests") == [
        (datetime(2026, 10, 30, 14, 30),)  # Tokyo is UTC+9
    ]
    assert datetime(2026, 10, 31, 3, 30, tzinfo=UTC) == instants[0].as_py()
