"""Delta table I/O: replace a run's rows, merge new keys, history, versions, rollback; Spark's Delta source
or delta-rs.
"""
