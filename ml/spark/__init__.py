"""Apache Spark engine (``AFFINITY_ENGINE=spark``): the session, the lake bridge, MLlib ALS.

Spark is an extra (``requirements-spark.txt``, ``make setup-spark``): nothing here imports
``pyspark`` at module level, so the default install can import the package.

- :mod:`ml.spark.session` -- the one SparkSession of a home (local mode by default);
- :mod:`ml.spark.lake` -- DuckDB <-> Spark tables as Parquet (dbt sources out, dbt
  relations back as DuckDB views);
- :mod:`ml.spark.als` -- the ``spark_als`` candidate family (pyspark.ml ALS);
- :mod:`ml.spark.scoring` -- top-k scoring of customer blocks against item factors.
"""
