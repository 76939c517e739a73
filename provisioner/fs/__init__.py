"""Filesystem primitives shared by the sinks and the CLI's report and metrics files."""
