"""The readable report beside the tables: report.md, the budget chart, the console summary.
"""
