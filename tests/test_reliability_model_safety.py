"""Model safety: a degenerate training is recorded, not promoted, and scoring keeps the champion.

``tests/test_train.py`` shows that degenerate trainings (every interaction on one product, a
tiny sample) are recorded in MLflow and not promoted. This adds the other half on a
warehouse with a champion: after such a training, the serving model and every
recommendation written are still the champion's.
"""

from __future__ import annotations

from datetime import timedelta

import mlflow
import polars as pl
from mlflow import MlflowClient
from test_score_support import LOGICAL_DATE, build_marts
from test_train_support import fast_config

from ml.config import paths
from ml.serving.config import ScoreConfig
from ml.serving.model import load_serving_model
from ml.serving.recommend import score
from ml.train import train
from ml.train.tracking import CHAMPION, DEFAULT_MODEL_NAME, alias_version
from ml.warehouse import connect
from ml.warehouse.tables import read_frame

TRAIN_AS_OF = LOGICAL_DATE + timedelta(days=1)  # the test window ends with the logical date


def test_after_a_degenerate_training_scoring_keeps_using_the_champion():
    frames = build_marts()
    good = train(TRAIN_AS_OF, config=fast_config(bpr_enabled=False))
    assert good.promoted, good.reason
    champion = alias_version(DEFAULT_MODEL_NAME, CHAMPION)
    assert champion == good.model_version

    # Tomorrow's training data is degenerate: every interaction on one product.
    degenerate = frames["interaction_events"].with_columns(pl.lit("P0001").alias("product_id"))
    with connect() as con:
        con.register("degenerate", degenerate.to_arrow())
        con.execute("CREATE OR REPLACE TABLE marts.interaction_events AS SELECT * FROM degenerate")
        con.unregister("degenerate")
    bad = train(TRAIN_AS_OF, config=fast_config(bpr_enabled=False))

    # Recorded (a finished MLflow run with the gate's decision), not promoted.
    assert not bad.promoted
    mlflow.set_tracking_uri(paths().mlflow_tracking_uri)
    run = MlflowClient().get_run(bad.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["gate.decision"] == bad.decision != "champion"
    assert alias_version(DEFAULT_MODEL_NAME, CHAMPION) == champion

    # Scoring serves the champion, and says so in every row it writes.
    model = load_serving_model(LOGICAL_DATE)
    assert (model.name, model.version) == (DEFAULT_MODEL_NAME, champion)
    with connect() as con:  # the real history back for scoring
        con.register("events", frames["interaction_events"].to_arrow())
        con.execute("CREATE OR REPLACE TABLE marts.interaction_events AS SELECT * FROM events")
        con.unregister("events")
    score(LOGICAL_DATE, config=ScoreConfig(n=5), model=model)
    with connect() as con:
        versions = read_frame(
            con, "SELECT DISTINCT model_name, model_version FROM ml.recommendations"
        )
    assert versions.rows() == [(DEFAULT_MODEL_NAME, champion)]
