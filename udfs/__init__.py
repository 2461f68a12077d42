"""Functions that run on Spark executors (Arrow and pandas UDFs); they import only the core and the encoder.

Imported as ``smart_spark.udfs`` (``smart_spark/udfs`` links to this folder; docs/architecture.md), so the
wheel installs them inside the package and executors find them wherever ``smart_spark`` is installed.
"""
