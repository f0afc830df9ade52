"""Id -> position lookups (ml/ids.py): strings, and Enum-coded ids as training loads them."""

from __future__ import annotations

import numpy as np
import polars as pl

from ml.ids import IdIndex


def test_strings_and_enum_codes_give_the_same_positions_with_unknowns_and_nulls_at_minus_one():
    index = IdIndex(np.array(["c", "a", "b"]))
    wanted = ["b", "z", None, "c", "a", "b"]
    as_strings = index.lookup(pl.Series(wanted, dtype=pl.String))
    # The Enum's categories include an id the index lacks ("z"); a null has no code.
    as_enum = index.lookup(pl.Series(wanted, dtype=pl.String).cast(pl.Enum(["a", "b", "c", "z"])))
    assert as_strings.tolist() == [2, -1, -1, 0, 1, 2]
    assert as_enum.tolist() == as_strings.tolist()
    assert as_enum.dtype == np.int64
