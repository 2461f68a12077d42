"""The command line: the job's settings (flags, YAML keys, defaults and checks declared once).
"""
