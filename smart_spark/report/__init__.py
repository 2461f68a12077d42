"""The readable report beside the tables, one module per output: report.md (``markdown``), the budgets
chart (``chart``), the console lines (``console``) and a budget sweep's index (``sweep``); ``run`` writes
them all for a run. ``cells`` and ``tasks`` are what they share: how values are written, and what the
``task_weights`` table says.
"""
