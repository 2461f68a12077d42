"""spark-submit entry points: thin shims over the library (``smart_mixture.py``, ``export_mixture.py``).

Run as files (``spark-submit jobs/smart_mixture.py``, ``python jobs/smart_mixture.py``) or imported as
``smart_spark.jobs`` (``smart_spark/jobs`` links to this folder; the console scripts ``smart-mixture`` and
``smart-export`` are its ``cli`` functions).
"""
