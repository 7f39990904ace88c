"""Validate + compile a generated 1,000-node flow, as a ratio to yaml.safe_load.

Both are timed in this one process, alternating, so machine noise hits both
alike; the ratio is what we track (target: at most 5x).

    python -m bench.bench_validate [--nodes 1000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import yaml

from engine.language.compile import compile_flow
from engine.language.load import load_text
from engine.language.project import check_flow_document
from engine.language.registry import default_registry

TARGET_RATIO = 5.0


def generated_flow(node_count: int) -> str:
    """A flow shaped like real ones: menus, listens, lookups, conditions, speech, in a chain."""
    lines = [
        "flow: generated",
        "settings: {voice: rachel, language: en-US, no_input_timeout: 5s}",
        "variables:",
        "  caller_name: {default: there}",
        "start: n0",
        "nodes:",
    ]
    kinds = ["speak", "menu", "lookup", "condition", "listen"]
    last = node_count - 1
    for index in range(node_count):
        nxt = f"n{index + 1}" if index < last else "bye"
        kind = kinds[index % len(kinds)] if index < last else "speak"
        lines.append(f"  n{index}:")
        if kind == "speak":
            lines += [
                "    type: voice_speak",
                f'    message: "Step {index}: hello ${{caller_name | title}}."',
                f"    next: {nxt}",
            ]
        elif kind == "menu":
            lines += [
                "    type: voice_menu",
                '    prompt: "Press 1 or say yes. Press 2 or say no."',
                "    options:",
                f'      - {{key: "1", phrases: ["yes", "yeah"], next: {nxt}}}',
                '      - {key: "2", phrases: ["no", "nope"], next: bye}',
                f"    save_as: m{index}",
                '    no_input: [{reprompt: "Sorry?"}, {next: bye}]',
                '    no_match: [{reprompt: "Say yes or no."}, {next: bye}]',
            ]
        elif kind == "lookup":
            lines += [
                "    type: database_query",
                "    connection: accounts",
                '    query: "SELECT balance FROM accounts WHERE phone = :phone"',
                '    params: {phone: "${caller_number}"}',
                f"    save_as: r{index}",
                f"    next: {nxt}",
                "    on_error: bye",
            ]
        elif kind == "condition":
            lines += [
                "    type: condition",
                "    branches:",
                f"      - if: r{index - 1}.balance > 100",
                f"        next: {nxt}",
                "    else: bye",
            ]
        else:
            lines += [
                "    type: voice_listen",
                '    prompt: "What would you like?"',
                "    expected_phrases: [balance, agent]",
                f"    save_as: l{index}",
                "    no_input: [{next: bye}]",
                "    no_match: [{next: bye}]",
                f"    next: {nxt}",
            ]
    lines += ["  bye:", "    type: voice_hangup", '    farewell_message: "Goodbye!"']
    return "\n".join(lines) + "\n"


def validate_and_compile(text: str) -> None:
    registry = default_registry()
    document = load_text(text, "generated.yaml")
    problems = [d for d in check_flow_document(document, registry) if d.is_error]
    if problems:
        raise SystemExit(f"the generated flow is invalid: {problems[0].one_line()}")
    compile_flow(document, registry)


def best_of(function: Callable[[], object], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    text = generated_flow(args.nodes)
    validate_and_compile(text)  # warm caches (schema, validator, templates) once, as a server would
    baseline: list[float] = []
    ours: list[float] = []
    for _ in range(args.rounds):  # alternate so drift affects both equally
        baseline += best_of(lambda: yaml.safe_load(text), 1)
        ours += best_of(lambda: validate_and_compile(text), 1)
    base, mine = statistics.median(baseline), statistics.median(ours)
    ratio = mine / base
    print(f"flow: {args.nodes} nodes, {len(text.splitlines())} lines, {len(text)} bytes")
    print(f"yaml.safe_load          median {base * 1000:8.1f} ms")
    print(f"validate + compile      median {mine * 1000:8.1f} ms")
    verdict = "OK" if ratio <= TARGET_RATIO else "ABOVE TARGET"
    print(f"ratio                   {ratio:8.2f}x   (target <= {TARGET_RATIO}x: {verdict})")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
