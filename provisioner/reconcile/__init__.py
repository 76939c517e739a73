"""Reconciliation: the shared model, then resolve -> observe -> plan (pure) -> execute.

`pipeline` runs the stages in order; `session` opens what they work with.
"""
