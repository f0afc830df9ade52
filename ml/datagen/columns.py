"""The base of the generator's column batches (customers, sessions, orders, reviews ...)."""

from __future__ import annotations

from dataclasses import fields

import numpy as np


class Columns:
    """Base of a frozen dataclass whose fields are equal-length numpy columns, one row each."""

    def __len__(self) -> int:
        return len(getattr(self, fields(self)[0].name))

    def subset(self, keep: np.ndarray):
        """The rows where ``keep`` is true, order preserved (same class)."""
        return type(self)(*(getattr(self, column.name)[keep] for column in fields(self)))
