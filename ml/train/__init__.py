"""Recommender training and review in MLflow.

Entry points
------------
:func:`train`
    Split in time (windows sized to the data), search the recipe on the validation window
    (ALS, BPR, item-item neighbours, the popularity blend), evaluate the candidates on the
    test window, log everything to MLflow, register the chosen model and gate it
    (``champion`` / ``challenger`` aliases, promotions dated for backfills).
:func:`load_champion`
    The serving model behind ``models:/affinity-recommender@champion``, with its index maps
    and version, for scoring.

Modules (one job each): ``config`` (dataclasses), ``interactions`` (load, weight,
matrices), ``split`` (cut-offs, evaluation windows' truth), ``windows`` (adaptive
test/validation windows), ``categories``, ``models``
(ALS/BPR and the family registry), ``neighbours`` (item-item), ``blend`` (popularity
blend), ``popularity``, ``metrics``, ``evaluate``, ``tuning`` (the search) and ``trials``
(its bookkeeping), ``recipes`` (reuse, warm starts, skips), ``candidates`` (one run's
fits, gate and registration), ``registry`` (champion as of a date, fingerprints),
``bundle`` (model + index maps), ``pyfunc``, ``tracking`` (MLflow), ``gate``, ``review``,
``plots``, ``trainer`` (the entry point), ``erasure`` (logged models re-exported
without erased customers).
"""

from ml.train.config import TrainConfig
from ml.train.tracking import load_champion
from ml.train.trainer import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "load_champion", "train"]
