"""``voxflow schema [--out DIR]``: write the JSON Schemas editors use for autocompletion."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.language.registry import default_registry
from engine.language.schema import write_schemas

HELP = "Write flow.schema.json and trigger.schema.json (from the installed node types)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", default="schemas", metavar="DIR", help="where to write them (default: schemas)"
    )


def run(args: argparse.Namespace) -> int:
    for path in write_schemas(default_registry(), Path(args.out)):
        print(f"wrote {path}")
    return 0
