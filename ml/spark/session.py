"""The SparkSession of an Affinity home: local mode by default, everything inside the home.

Layout under ``$AFFINITY_HOME/spark/``::

    warehouse/      spark.sql.warehouse.dir: the tables dbt builds (<schema>.db/<table>/)
    lake/           dbt sources written by the Python steps (<schema>/<table>/*.parquet)
    metastore_db/   the embedded Derby metastore (one process at a time)

The same settings are the ``server_side_parameters`` of the ``spark`` target in
``dbt_project/profiles.yml``: whichever of dbt-spark or this module starts the session
first, it is the same session (``getOrCreate``), and one Python process holds it.

Settings that keep the two engines' tables alike: the UTC session time zone, SQL
``timestamp`` meaning TIMESTAMP_NTZ (DuckDB's naive TIMESTAMP), Parquet timestamps in
microseconds (what DuckDB reads back as TIMESTAMP).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ml.config import affinity_home

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

# The documented, non-secret salt of development homes (as the DuckDB dev target).
DEV_PII_SALT = "affinity-dev-salt-not-secret"
# The Spark SQL session variable holding the salt (its name, not its value).
SALT_SQL_VARIABLE = "affinity_pii_salt"


@dataclass(frozen=True)
class SparkPaths:
    """Where a home's Spark state lives."""

    home: Path

    @property
    def root(self) -> Path:
        return self.home / "spark"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse"

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def metastore(self) -> Path:
        return self.root / "metastore_db"

    def table_dir(self, schema: str, table: str) -> Path:
        """Directory of a table dbt built (managed by Spark's catalog)."""
        return self.warehouse / f"{schema}.db" / table

    def lake_dir(self, schema: str, table: str) -> Path:
        """Directory of a source table the Python steps wrote."""
        return self.lake / schema / table


def spark_paths(home: Path | str | None = None) -> SparkPaths:
    """The :class:`SparkPaths` of ``home`` (default ``$AFFINITY_HOME``)."""
    return SparkPaths(Path(home).resolve() if home is not None else affinity_home())


def spark_conf(home: Path | str | None = None) -> dict[str, str]:
    """Spark settings of a home (also what ``profiles.yml`` passes as server-side parameters).

    ``AFFINITY_SPARK_MASTER`` (default ``local[*]``), ``AFFINITY_SPARK_DRIVER_MEMORY``
    (default ``4g``) and ``AFFINITY_SPARK_SHUFFLE_PARTITIONS`` (default 8: a local run's
    shuffles are small; Spark's 200 would mostly schedule empty tasks) override them.
    """
    where = spark_paths(home)
    return {
        "spark.master": os.environ.get("AFFINITY_SPARK_MASTER", "local[*]"),
        "spark.app.name": "affinity",
        # Python workers (mapInPandas scoring) run this interpreter, with the project's
        # packages, not whatever `python3` is on the PATH.
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.driver.memory": os.environ.get("AFFINITY_SPARK_DRIVER_MEMORY", "4g"),
        "spark.ui.enabled": "false",
        "spark.sql.warehouse.dir": str(where.warehouse),
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={where.metastore};create=true"
        ),
        # derby.log goes to the home, not to the working directory.
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={where.root}",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.timestampType": "TIMESTAMP_NTZ",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.shuffle.partitions": os.environ.get("AFFINITY_SPARK_SHUFFLE_PARTITIONS", "8"),
        # dbt-spark forces ANSI off on its sessions; the same here, so the Python side and
        # dbt see the same casts (an invalid cast is NULL, as in dbt's models).
        "spark.sql.ansi.enabled": "false",
    }


def require_pyspark() -> None:
    """Raise an ``ImportError`` that says how to install the Spark extra."""
    try:
        import pyspark  # noqa: F401
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError(
            "the Spark engine needs the Spark extra: run `make setup-spark` (pyspark, "
            "dbt-spark[session]; Java 17: apt-get install openjdk-17-jre-headless)"
        ) from error


def spark_session(home: Path | str | None = None) -> SparkSession:
    """Return the home's SparkSession, starting it on first use (about 6 s: the JVM).

    The PII salt (``AFFINITY_PII_SALT``, else the dev salt) is declared as the session
    variable ``affinity_pii_salt`` through a parameter, never through SQL text, so it
    reaches no compiled dbt file or log (``macros/spark/pii.sql`` reads it).
    """
    require_pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    where = spark_paths(home)
    where.root.mkdir(parents=True, exist_ok=True)
    # pyspark starts its Python workers with PYSPARK_PYTHON (default: `python3` on the PATH).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in spark_conf(where.home).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    declare_pii_salt(spark)
    log.info("spark session started (%s, warehouse %s)", spark.sparkContext.master, where.warehouse)
    return spark


def declare_pii_salt(spark: SparkSession) -> None:
    """Declare the session variable the Spark ``hash_email`` reads (value by parameter)."""
    salt = os.environ.get("AFFINITY_PII_SALT") or DEV_PII_SALT
    spark.sql(f"DECLARE OR REPLACE VARIABLE {SALT_SQL_VARIABLE} STRING")
    spark.sql(f"SET VAR {SALT_SQL_VARIABLE} = :salt", args={"salt": salt})


def stop_spark_session() -> None:
    """Stop this process's SparkSession (releases the Derby metastore for other processes)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:  # pragma: no cover
        return
    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()
