"""Id -> position lookups shared by training (index maps) and serving (catalogue, histories)."""

from __future__ import annotations

import numpy as np
import polars as pl


class IdIndex:
    """Vectorised id -> position lookup (``-1`` for unknown ids; a repeated id: its first).

    A hash lookup in polars: 2M history ids against 500k customers take ~0.05 s, against
    ~0.8 s for a sorted search on numpy strings.
    """

    def __init__(self, ids) -> None:
        table = pl.DataFrame(
            {
                "id": pl.Series(np.asarray(ids).astype(str), dtype=pl.String),
                "position": np.arange(len(ids), dtype=np.int64),
            }
        ).unique("id", keep="first", maintain_order=True)
        self._ids, self._positions = table["id"], table["position"]

    def lookup(self, wanted) -> np.ndarray:
        if isinstance(wanted, pl.Series) and isinstance(wanted.dtype, pl.Enum):
            # Look each category up once, then gather by code: no string per row.
            by_code = self.lookup(wanted.dtype.categories)
            codes = wanted.to_physical()
            if codes.null_count():
                by_code = np.append(by_code, -1)
                codes = codes.cast(pl.Int64).fill_null(len(by_code) - 1)
            return by_code[codes.to_numpy()]
        wanted = (
            wanted.cast(pl.String)
            if isinstance(wanted, pl.Series)
            else pl.Series(np.asarray(wanted).astype(str), dtype=pl.String)
        )
        return wanted.replace_strict(
            self._ids, self._positions, default=-1, return_dtype=pl.Int64
        ).to_numpy(writable=True)
