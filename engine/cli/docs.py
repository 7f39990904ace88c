"""``voxflow docs [--out FILE]``: write the node reference from the installed plugins."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.authoring.node_reference import node_reference
from engine.language.registry import default_registry

HELP = "Write the node reference (every node type, its fields and outputs) as Markdown."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        default="docs/nodes.md",
        metavar="FILE",
        help="where to write it (default: docs/nodes.md; '-' prints it)",
    )


def run(args: argparse.Namespace) -> int:
    text = node_reference(default_registry())
    if args.out == "-":
        print(text, end="")
        return 0
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0
