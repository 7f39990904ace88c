"""``voxflow graph FLOW [--format mermaid|dot] [--out FILE]``: the call as a diagram."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.authoring.render import diagram_from_graph
from engine.authoring.render.dot import render_dot
from engine.authoring.render.mermaid import render_mermaid
from engine.core.errors import VoxflowError
from engine.language.project import compile_file

HELP = "Draw a flow as a diagram (Mermaid, which GitHub shows in Markdown, or Graphviz DOT)."
_MARKDOWN_SUFFIXES = (".md", ".markdown")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("flow", metavar="FLOW", help="the flow file to draw")
    parser.add_argument(
        "--format",
        choices=["mermaid", "dot"],
        default="mermaid",
        help="mermaid (default) or dot for Graphviz",
    )
    parser.add_argument(
        "--out",
        metavar="FILE",
        help="write the diagram to FILE instead of printing it; a .md file "
        "gets a ```mermaid block, ready for GitHub",
    )


def run(args: argparse.Namespace) -> int:
    diagram = diagram_from_graph(compile_file(args.flow))
    text = render_mermaid(diagram) if args.format == "mermaid" else render_dot(diagram)
    if not args.out:
        sys.stdout.write(text)
        return 0
    if args.format == "mermaid" and args.out.lower().endswith(_MARKDOWN_SUFFIXES):
        text = f"```mermaid\n{text}```\n"
    write_text(Path(args.out), text)
    print(f"Wrote the diagram of {args.flow} to {args.out}.")
    return 0


def write_text(path: Path, text: str) -> None:
    """Write a file, turning the usual failures into words."""
    try:
        path.write_text(text, encoding="utf-8")
    except FileNotFoundError:
        raise VoxflowError(
            f"cannot write {path}: the folder {path.parent} does not exist. Create it first."
        ) from None
    except IsADirectoryError:
        raise VoxflowError(f"cannot write {path}: it is a folder. Give a file name.") from None
    except OSError as exc:
        raise VoxflowError(f"cannot write {path} ({exc.strerror}).") from None
