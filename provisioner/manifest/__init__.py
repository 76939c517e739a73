"""Manifests: the YAML format, read with line numbers, validated whole, flattened to credentials."""

from provisioner.manifest.format import DEFAULT_SINK, NAME_PATTERN, manifest_schema
from provisioner.manifest.load import Manifests, expand_paths, load_manifests

__all__ = [
    "DEFAULT_SINK",
    "NAME_PATTERN",
    "Manifests",
    "expand_paths",
    "load_manifests",
    "manifest_schema",
]
