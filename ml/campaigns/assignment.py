"""Treatment / control assignment: a seeded hash of (campaign, customer).

The hash, not a random draw, decides the group, so a customer lands in the same group of
a campaign on every re-run and backfill, on any machine, whatever the order or size of
the audience. This module has no heavy imports: the shop generator uses the same
function to simulate campaigns with a known effect on exactly the customers the campaign
step will treat.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

TREATMENT = "treatment"
CONTROL = "control"
# Changing the salt reshuffles every campaign's groups: never change it for live campaigns.
DEFAULT_SALT = "affinity-campaigns-v1"
_SCALE = float(2**64)


def assignment_draw(campaign_id: str, customer_id: str, salt: str = DEFAULT_SALT) -> float:
    """Return the customer's uniform draw in ``[0, 1)`` for one campaign.

    BLAKE2b of ``salt``, campaign and customer (unambiguously separated), first 8 bytes
    as an unsigned integer over 2**64. Stable across Python versions and platforms,
    unlike ``hash()`` or a DataFrame library's hash.
    """
    key = f"{salt}\x1f{campaign_id}\x1f{customer_id}".encode()
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def assignment_draws(
    campaign_id: str, customer_ids: Iterable[str], salt: str = DEFAULT_SALT
) -> np.ndarray:
    """Vector of :func:`assignment_draw` for many customers of one campaign."""
    return np.fromiter(
        (assignment_draw(campaign_id, str(c), salt) for c in customer_ids), dtype=np.float64
    )


def is_control(
    campaign_id: str, customer_ids: Iterable[str], control_share: float, salt: str = DEFAULT_SALT
) -> np.ndarray:
    """Boolean mask: which customers a campaign holds out as control.

    A customer is control when their draw is below ``control_share``, so each customer
    is control with probability ``control_share``, independently of everything else.

    Raises
    ------
    ValueError
        ``control_share`` outside ``[0, 1]``.
    """
    if not 0.0 <= control_share <= 1.0:
        raise ValueError(
            f"control_share must be within [0, 1], got {control_share} (campaign {campaign_id})"
        )
    return assignment_draws(campaign_id, customer_ids, salt) < control_share


def assign_groups(
    campaign_id: str, customer_ids: Iterable[str], control_share: float, salt: str = DEFAULT_SALT
) -> np.ndarray:
    """``'treatment'`` / ``'control'`` for every customer (object array, input order)."""
    control = is_control(campaign_id, customer_ids, control_share, salt)
    return np.where(control, CONTROL, TREATMENT).astype(object)
