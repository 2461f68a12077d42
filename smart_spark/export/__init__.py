"""Export a run's mixture as training files (JSON Lines / Parquet shards).
"""
