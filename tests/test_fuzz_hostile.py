"""20,000 mutated flows and triggers, hostile ones included: load and validate never raise.

The mutations of tests/test_fuzz_load_validate.py (a hurried edit), plus values
meant to hurt: placeholders nested or chained thousands deep, numbers of
thousands of digits, repetitions of a hundred million characters, Jinja block
syntax and NUL characters, YAML nested past any sensible depth, and values of
the wrong kind in every field. A fixed seed, so CI runs the same 20,000 inputs
every time; the loop does only load → validate (no hypothesis, no compile) so
that it stays quick.

The property: only :class:`VoxflowError` escapes loading, nothing escapes
validating, and no file gets the "voxflow could not finish checking this file"
error that project.check_paths uses as its last line of defence.
"""

from __future__ import annotations

import random
from pathlib import Path

from engine.core.errors import Diagnostic, VoxflowError
from engine.language.load import load_text
from engine.language.project import check_flow_document
from engine.language.registry import default_registry
from engine.language.triggers import trigger_diagnostics
from tests.test_fuzz_load_validate import EXAMPLES, mutate

REGISTRY = default_registry()
ROOT = Path(__file__).resolve().parent.parent
TRIGGERS = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "flows" / "triggers").glob("*.yaml"))]
SEED = 17
COUNT = 20_000

HOSTILE_VALUES = [
    '"${' + "+".join(["1"] * 3000) + '}"',
    '"${' + "(" * 200 + "1" + ")" * 200 + '}"',
    '"${' + "[" * 300 + "]" * 300 + '}"',
    '"${' + "not " * 2000 + 'x}"',
    '"${a' + ".b" * 3000 + '}"',
    '"${a' + "|upper" * 3000 + '}"',
    '"${' + "1" * 5000 + '}"',
    "1" * 5000,
    "-" + "9" * 4400,
    "1e999999",
    "0x" + "f" * 5000,
    "\"${ 'a' * 100000000 }\"",
    '"${ [1] * 100000000 }"',
    '"${ 9 ** 9 ** 9 }"',
    "\"${ '%0999999999d' % 1 }\"",
    "\"${ 'x' | center(1000000000) }\"",
    "\"${ range(100000) | join('x' * 1000) }\"",
    "\"${ 'ab' | replace('', 'x' * 10000) }\"",
    '"{% if caller_number %}x{% endif %}"',
    '"\\0{% if x %}yes\\0{% endif %}"',
    '"SELECT 1 {# x #} ${caller_number}"',
    "\"${ ''.__class__.__mro__ }\"",
    '"${ caller_number.__init__ }"',
    "[" * 60 + "]" * 60,
    "{a: " * 60 + "1" + "}" * 60,
    '"\\x07\\x1b[31mred\\x1b[0m"',
    "!!binary aGVsbG8=",
    "!!python/object:os.system x",
    "&a [*a]",
    "2",
    "[2]",
    "{}",
    "null",
    "true",
    "[[[]]]",
    "{options: 2}",
    "[{next: 2}]",
    '"https://${host}/x"',
    '"api.example.com/x"',
    '"Europe/Londn"',
]


def hostile_mutation(text: str, rng: random.Random) -> str:
    """Put a hostile value where a value was (any field, any depth)."""
    lines = text.splitlines()
    candidates = [n for n, line in enumerate(lines) if ": " in line or line.rstrip().endswith(":")]
    if not candidates:
        return text + "\n" + rng.choice(HOSTILE_VALUES)
    n = rng.choice(candidates)
    key = lines[n].split(":", 1)[0]
    lines[n] = f"{key}: {rng.choice(HOSTILE_VALUES)}"
    return "\n".join(lines) + "\n"


def mutated_text(index: int, rng: random.Random) -> tuple[str, bool]:
    """The index-th input: (text, is a trigger file)."""
    trigger = bool(TRIGGERS) and index % 10 == 9
    sources = TRIGGERS if trigger else EXAMPLES
    text = sources[rng.randrange(len(sources))]
    for _ in range(rng.randint(1, 3)):
        text = hostile_mutation(text, rng) if rng.random() < 0.5 else mutate(text, rng)
    return text, trigger


def check_one(text: str, trigger: bool) -> list[Diagnostic]:
    try:
        document = load_text(text, "fuzz.yaml")
    except VoxflowError as error:
        return list(error.diagnostics)
    if trigger:
        return trigger_diagnostics(document, {"ivr-menu", "voicemail"})
    return check_flow_document(document, REGISTRY)


def test_twenty_thousand_hostile_mutations_never_crash_the_checks() -> None:
    rng = random.Random(SEED)
    crashes: list[str] = []
    validated = 0
    for index in range(COUNT):
        text, trigger = mutated_text(index, rng)
        try:
            diagnostics = check_one(text, trigger)
        except (Exception, RecursionError) as error:
            crashes.append(f"#{index}: {type(error).__name__}: {error}\n{text[:300]}")
            continue
        internal = [d for d in diagnostics if d.code == "internal"]
        if internal:
            crashes.append(f"#{index}: {internal[0].message}\n{text[:300]}")
        validated += 1
    assert not crashes, f"{len(crashes)} of {COUNT} crashed; the first:\n" + crashes[0]
    assert validated == COUNT
