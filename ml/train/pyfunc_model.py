"""Models-from-code entry point of the pyfunc (MLflow stores and runs this file, no pickle)."""

from mlflow.models import set_model

from ml.train.pyfunc import AffinityRecommender

set_model(AffinityRecommender())
