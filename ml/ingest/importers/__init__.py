"""Importers: map public data formats onto the input contract (:mod:`ml.ingest.contract`)."""

from ml.ingest.importers.online_retail import import_online_retail

__all__ = ["import_online_retail"]
