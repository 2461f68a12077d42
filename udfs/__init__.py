"""Functions that run on Spark executors (Arrow and pandas UDFs); they import only the core and the encoder.
"""
