"""The gate: statistics, per-metric verdicts, the baseline store and usage budgets.

Plain Python over scores and usage figures: imports providers' usage types and the base
modules (errors, fileio, models); never pytest, the glue, the core or the outputs.
"""
