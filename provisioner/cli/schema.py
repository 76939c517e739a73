"""`provisioner schema`: print the manifest JSON Schema (for editors)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

from provisioner.cli.arguments import Command
from provisioner.cli.common import EXIT_OK
from provisioner.cli.views import View
from provisioner.manifest import manifest_schema


@dataclass(frozen=True)
class SchemaArgs:
    """`schema` takes no arguments."""

    @classmethod
    def parse(cls, namespace: argparse.Namespace) -> SchemaArgs:
        return cls()


def add_flags(parser: argparse.ArgumentParser) -> None:
    return None


def schema(args: SchemaArgs, view: View) -> int:
    print(json.dumps(manifest_schema(), indent=2))
    return EXIT_OK


COMMAND = Command("schema", add_flags, SchemaArgs.parse, schema)
