"""The SMART algorithm in numpy: greedy engines, partitioned greedy, budgets, strata, stage-1 weighting.

No Spark, no Arrow, no command line: every function takes arrays and plain settings (layer contract in
pyproject.toml).
"""
