"""Reconciliation: observe -> resolve -> plan (pure) -> budget (pure) -> execute.

`pipeline` runs the stages in order; `session` opens what they work with.
"""
