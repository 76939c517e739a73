"""`provisioner schema`: print the manifest JSON Schema (for editors)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from provisioner.cli.common import EXIT_OK
from provisioner.manifest import manifest_schema


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("schema", help="print the manifest JSON Schema")
    parser.set_defaults(handler=schema)


def schema(args: argparse.Namespace) -> int:
    print(json.dumps(manifest_schema(), indent=2))
    return EXIT_OK
