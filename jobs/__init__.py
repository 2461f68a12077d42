"""spark-submit entry points: thin shims over the library (``smart_mixture.py``, ``export_mixture.py``).
"""
