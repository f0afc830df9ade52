"""Importers: map public data formats onto the input contract (:mod:`ml.ingest.contract`)."""

from ml.ingest.importers.amazon_reviews import import_amazon_reviews
from ml.ingest.importers.online_retail import import_online_retail
from ml.ingest.importers.womens_clothing import import_womens_clothing

__all__ = ["import_amazon_reviews", "import_online_retail", "import_womens_clothing"]
