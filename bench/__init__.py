"""Benchmarks: the provisioner against the simulator in its own process, beside a naive script.

`python -m bench` (or `make bench`) prints one table; see docs/performance.md.
"""
