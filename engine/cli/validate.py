"""``voxflow validate [PATHS] [--format text|json] [--strict]``: check flow and trigger files."""

from __future__ import annotations

import argparse
import json
import sys

from engine.core.output import Painter, print_diagnostics
from engine.language.project import check_paths

HELP = "Check flow and trigger files and explain every problem found."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="*", default=["flows"], metavar="PATH", help="flow files or folders (default: flows)"
    )
    parser.add_argument(
        "--format", choices=["text", "json"], default="text", help="text for people (default), json for tools"
    )
    parser.add_argument("--strict", action="store_true", help="fail on warnings too, not only on errors")
    parser.add_argument("--no-context", action="store_true", help="do not show the lines around each problem")


def run(args: argparse.Namespace) -> int:
    result = check_paths(args.paths)
    failed = bool(result.errors) or (args.strict and bool(result.warnings))
    if args.format == "json":
        report = {
            "ok": not failed,
            "files": result.files,
            "flows": {flow_id: graph.version for flow_id, graph in result.flows.items()},
            "diagnostics": [d.to_json() for d in result.diagnostics],
        }
        print(json.dumps(report, indent=2))
        return 1 if failed else 0
    print_diagnostics(result.diagnostics, sys.stdout, show_context=not args.no_context)
    paint = Painter(sys.stdout)
    count = len(result.files)
    noun = "file" if count == 1 else "files"
    if not result.files:
        print(f"No flow files found in {', '.join(args.paths)}.")
        return 1
    errors, warnings = len(result.errors), len(result.warnings)
    if failed:
        parts = [f"{errors} error{'s' if errors != 1 else ''}"] if errors else []
        if warnings:
            parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
        note = " (warnings count as errors with --strict)" if args.strict and not errors else ""
        print(paint(f"{' and '.join(parts)} in {count} {noun}{note}.", "red", "bold"))
        return 1
    summary = f"All flows OK ({count} {noun}"
    summary += f", {warnings} warning{'s' if warnings != 1 else ''})." if warnings else ")."
    print(paint(summary, "green", "bold"))
    return 0
