"""Ingest: the input contract, the typed load into ``raw`` with quarantine, importers.

Modules
-------
:mod:`.contract`   the entities, columns, keys and rules of the landing zone
:mod:`.files`      finding, fingerprinting and staging landing files
:mod:`.lines`      line numbers of CSV records, blank lines
:mod:`.rules`      validation rules: types, bounds, required values, business rules, keys
:mod:`.timestamps` timestamps to naive UTC: offsets, zone names, the shop's zone
:mod:`.validation` staging and validating one file (DuckDB's; Spark's in ml.spark.ingest)
:mod:`.report`     what a batch did, per file and in total
:mod:`.loader`     :func:`ingest`: one transaction per batch, manifest, reconciliation
:mod:`.importers`  public export formats converted into the contract
"""

from ml.ingest.files import IngestError
from ml.ingest.loader import check_manifest, ensure_raw_schema, ingest
from ml.ingest.report import IngestReport

__all__ = ["IngestError", "IngestReport", "check_manifest", "ensure_raw_schema", "ingest"]
