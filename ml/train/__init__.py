"""Recommender training and review in MLflow.

Entry points
------------
:func:`train`
    Split in time, tune ALS on the validation window, fit ALS / BPR / popularity, evaluate
    on the test window, log everything to MLflow, register the ALS model and gate it
    (``champion`` / ``challenger`` aliases).
:func:`load_champion`
    The serving model behind ``models:/affinity-recommender@champion``, with its index maps
    and version, for scoring.

Modules (one job each): ``config`` (dataclasses), ``interactions`` (load, weight, split,
matrices), ``models`` (ALS/BPR/popularity), ``metrics``, ``evaluate``, ``tuning``,
``bundle`` (model + index maps), ``pyfunc``, ``tracking`` (MLflow), ``gate``, ``plots``,
``pipeline`` (orchestration), ``erasure`` (logged models re-exported without erased
customers).
"""

from ml.train.config import TrainConfig
from ml.train.tracking import load_champion
from ml.train.trainer import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "load_champion", "train"]
