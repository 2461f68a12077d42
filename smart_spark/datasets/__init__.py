"""Generated instruction tables with known structure, for tests and benchmarks.
"""
