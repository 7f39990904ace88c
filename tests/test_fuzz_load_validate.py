"""Fuzzing load → validate → compile: whatever the text, only our user-facing error escapes.

Three sources of input: (a) random text and random bytes read as text, (b) the
example flows mutated the way a hurried edit breaks a file (lines deleted,
duplicated, swapped or re-indented, tabs, truncation, YAML-significant
characters, values of the wrong kind), and (c) flows generated from
strategies, mostly well-formed so that many reach the compiler.

For every input, :func:`run_pipeline` asserts that nothing but
:class:`VoxflowError` is raised and that every diagnostic is usable: a
message, a line (when the file has content) and a document path that exists.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core.errors import Diagnostic, VoxflowError
from engine.language.compile import FlowGraph, compile_flow
from engine.language.load import LoadedDocument, load_text
from engine.language.project import check_flow_document
from engine.language.registry import default_registry
from engine.language.sourcemap import format_path

REGISTRY = default_registry()
FLOWS_DIR = Path(__file__).parent.parent / "flows"

# Fixed, derandomized, no example database: the same inputs on every run and in CI.
FUZZ = settings(
    deadline=None,
    max_examples=300,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# A flow that uses every built-in node type, so mutations reach every plugin schema.
EVERY_NODE_TYPE = """\
flow: every-node-type
description: Uses each built-in node type once.
settings:
  voice: rachel
  language: en-US
  barge_in: true
  no_input_timeout: 5s
  max_call_duration: 30m
variables:
  caller_name: {default: there}
  attempts: {default: 0, type: integer}
start: greet
error_handler: sorry
nodes:
  greet:
    type: voice_greet
    message: "Hello ${caller_name | title}! Calls cost $${attempts}."
    next: menu
  menu:
    type: voice_menu
    prompt: "Press 1 or say balance. Press 2 or say agent."
    options:
      - key: "1"
        phrases: [balance, my balance]
        next: ask
      - key: "2"
        phrases: [agent]
        next: transfer
    no_input:
      - reprompt: "Sorry, I didn't hear anything."
      - next: goodbye
    no_match:
      - reprompt: "Sorry?"
      - next: goodbye
  ask:
    type: voice_listen
    prompt: "What is your question?"
    max_duration: 20s
    end_silence_ms: 800
    save_as: question
    no_input:
      - reprompt: "Are you there?"
      - next: goodbye
    next: digits
  digits:
    type: voice_dtmf_collect
    prompt: "Type your account number, then press pound."
    num_digits: 8
    finish_on_key: "#"
    timeout: 10s
    save_as: account_number
    no_input:
      - next: goodbye
    no_match:
      - next: goodbye
    next: lookup
  lookup:
    type: database_query
    connection: accounts
    query: "SELECT balance FROM accounts WHERE number = :number"
    params: {number: "${account_number.digits}"}
    save_as: account
    next: answer
    on_error: sorry
  answer:
    type: llm
    prompt: "Answer ${question.transcript} for balance ${account.balance}."
    system: "You are a bank assistant."
    temperature: 0.2
    save_as: reply
    next: fetch
    on_error: sorry
  fetch:
    type: http_request
    method: POST
    url: "https://api.example.com/calls/${call_id}"
    headers: {Authorization: "Bearer token"}
    body: {reply: "${reply.text}", tries: 3}
    timeout: 5s
    retry: {max_attempts: 3, backoff: 1s}
    save_as: response
    next: check
    on_error: sorry
  check:
    type: condition
    branches:
      - if: response.status == 200 and attempts < 3
        next: count
    else: approval
  count:
    type: set
    values:
      attempts: "${attempts + 1}"
    max_visits: 3
    next: speak
  speak:
    type: voice_speak
    message: "${reply.text}"
    interruptible: false
    next: approval
  approval:
    type: wait_for_signal
    signal: supervisor_decision
    timeout: 2m
    hold_message: "Please hold."
    save_as: decision
    next: record
    on_timeout: sorry
  record:
    type: voice_record
    prompt: "Leave a message after the beep."
    max_duration: 1m
    beep: true
    save_as: voicemail
    no_input:
      - next: goodbye
    next: survey
  survey:
    type: subflow
    flow: satisfaction-survey
    inputs: {name: "${caller_name}"}
    outputs: {score: score}
    next: goodbye
  transfer:
    type: voice_transfer
    destination: "+15550001111"
    announce_message: "Connecting you now."
  sorry:
    type: end
    status: failed
    reason: something went wrong
  goodbye:
    type: voice_hangup
    farewell_message: "Goodbye!"
"""


def example_flows() -> list[str]:
    texts = [EVERY_NODE_TYPE]
    if FLOWS_DIR.is_dir():
        texts += [p.read_text(encoding="utf-8") for p in sorted(FLOWS_DIR.glob("*.yaml"))]
    return texts


EXAMPLES = example_flows()


# --------------------------------------------------------------------------- the property


def document_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[str]:
    """Every path in the loaded data, formatted the way diagnostics show them."""
    yield format_path(path)
    if isinstance(value, dict):
        for key, item in value.items():
            yield from document_paths(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from document_paths(item, path + (index,))


def check_diagnostic(diagnostic: Diagnostic, text: str, paths: set[str] | None) -> None:
    assert isinstance(diagnostic, Diagnostic)
    assert isinstance(diagnostic.message, str) and diagnostic.message.strip(), diagnostic
    if text.strip():
        assert diagnostic.line >= 1, diagnostic
        assert diagnostic.column >= 1, diagnostic
    # A line past the end of the file can only be "just after the last line".
    assert diagnostic.line <= max(1, len(text.splitlines()) + 1), diagnostic
    if paths is not None:
        assert diagnostic.path in paths, (diagnostic, sorted(paths)[:20])


def run_pipeline(text: str) -> FlowGraph | None:
    """load → check → compile; only VoxflowError may escape, and diagnostics must be usable."""
    try:
        document: LoadedDocument = load_text(text, "fuzz.yaml")
    except VoxflowError as error:
        assert error.diagnostics, "a load error says where the problem is"
        for diagnostic in error.diagnostics:
            check_diagnostic(diagnostic, text, None)
        return None
    diagnostics = check_flow_document(document, REGISTRY)
    paths = set(document_paths(document.data))
    for diagnostic in diagnostics:
        check_diagnostic(diagnostic, text, paths)
    if any(d.is_error for d in diagnostics):
        return None
    try:
        return compile_flow(document, REGISTRY)
    except VoxflowError:
        return None


def test_the_examples_are_clean_and_compile() -> None:
    """The mutation sources must be valid, or the fuzzing would start from broken files."""
    for text in EXAMPLES:
        document = load_text(text, "example.yaml")
        errors = [d.one_line() for d in check_flow_document(document, REGISTRY) if d.is_error]
        assert not errors, errors
        assert run_pipeline(text) is not None


# --------------------------------------------------------------------------- (a) random text

YAML_PIECES = [
    ":",
    ": ",
    "-",
    "- ",
    "{",
    "}",
    "[",
    "]",
    '"',
    "'",
    "&",
    "*",
    "!",
    "!!",
    "|",
    ">",
    "%",
    "@",
    "`",
    "#",
    ",",
    "?",
    "\t",
    "${",
    "}",
    "$${",
    "\n",
    "\n  ",
    "\n    ",
    " ",
    "---",
    "...",
    "~",
    "null",
    "true",
    "1",
    "0x1",
    "1e3",
    ".inf",
    "<<",
    "\\",
    "\r\n",
    "\x85",
    "\u2028",
    "\ufeff",
    "\x00",
    "\x0c",
    "é",
    "flow",
    "nodes",
    "type",
    "next",
    "start",
    "greet",
    "voice_speak",
    "options",
    "key",
    "phrases",
]


@FUZZ
@given(st.text(max_size=400))
def test_random_text(text: str) -> None:
    run_pipeline(text)


@FUZZ
@given(st.lists(st.sampled_from(YAML_PIECES + list(string.ascii_lowercase)), max_size=120))
def test_random_yaml_like_text(pieces: list[str]) -> None:
    run_pipeline("".join(pieces))


@FUZZ
@given(st.binary(max_size=400), st.sampled_from(["utf-8", "latin-1", "utf-16"]))
def test_random_bytes_read_as_text(data: bytes, encoding: str) -> None:
    run_pipeline(data.decode(encoding, errors="replace"))


# --------------------------------------------------------------------------- (b) mutations

REPLACEMENT_VALUES = [
    "",
    "[]",
    "{}",
    "[a, b]",
    "{a: 1}",
    "1",
    "-1",
    "1.5",
    "true",
    "null",
    "~",
    "'x'",
    '"${"',
    "${}",
    "${x",
    "|",
    ">",
    "*a",
    "&a x",
    "!!int x",
    "- x",
    "yes",
    "5 seconds",
    "+1555",
    "sip:a@b",
    '"1"',
    "x: y",
    "[",
    "{",
    '"',
    "${a b}",
    "a > ",
    "${x} > 1",
    "goodbye",
    "greet",
    "voice_lisen",
    "0",
]


def _line_index(rng: random.Random, lines: list[str]) -> int:
    return rng.randrange(len(lines)) if lines else 0


def mutate(text: str, rng: random.Random) -> str:
    """One edit of the kind that breaks a YAML file."""
    lines = text.splitlines()
    if not lines:
        return rng.choice(REPLACEMENT_VALUES)
    i, j = _line_index(rng, lines), _line_index(rng, lines)
    kind = rng.randrange(11)
    if kind == 0:  # delete a line
        del lines[i]
    elif kind == 1:  # duplicate a line
        lines.insert(i, lines[i])
    elif kind == 2:  # swap two lines
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == 3:  # a tab in the indentation
        stripped = lines[i].lstrip(" ")
        lines[i] = "\t" * rng.randint(1, 2) + stripped
    elif kind == 4:  # indentation off by a few spaces
        stripped = lines[i].lstrip(" ")
        indent = len(lines[i]) - len(stripped)
        lines[i] = " " * max(0, indent + rng.choice([-3, -2, -1, 1, 2, 3])) + stripped
    elif kind == 5:  # truncated
        return text[: rng.randrange(len(text) + 1)]
    elif kind == 6:  # a YAML-significant character in place of another
        position = rng.randrange(len(text))
        return text[:position] + rng.choice(YAML_PIECES) + text[position + 1 :]
    elif kind == 7:  # a YAML-significant character inserted
        position = rng.randrange(len(text) + 1)
        return text[:position] + rng.choice(YAML_PIECES) + text[position:]
    elif kind == 8:  # a value of another kind
        candidates = [n for n, line in enumerate(lines) if ": " in line or line.rstrip().endswith(":")]
        if candidates:
            n = rng.choice(candidates)
            key = lines[n].split(":", 1)[0]
            lines[n] = f"{key}: {rng.choice(REPLACEMENT_VALUES)}"
    elif kind == 9:  # a name changed: a typo in a key or a value
        words = [w for w in set(text.replace(":", " ").split()) if w.isidentifier()]
        if words:
            word = rng.choice(sorted(words))
            typo = word[:-1] if len(word) > 1 and rng.random() < 0.5 else word + rng.choice("sx_")
            return text.replace(word, typo, rng.randint(1, 3))
    else:  # a whole block moved one level in or out
        stripped = lines[i].lstrip(" ")
        indent = len(lines[i]) - len(stripped)
        end = i + 1
        while end < len(lines) and (
            len(lines[end]) - len(lines[end].lstrip(" ")) > indent or not lines[end].strip()
        ):
            end += 1
        delta = rng.choice([-2, 2])
        for n in range(i, end):
            body = lines[n].lstrip(" ")
            lines[n] = " " * max(0, len(lines[n]) - len(body) + delta) + body
    return "\n".join(lines) + ("\n" if rng.random() < 0.9 else "")


def mutated(seed: int, source: int, edits: int) -> str:
    rng = random.Random(seed)
    text = EXAMPLES[source % len(EXAMPLES)]
    for _ in range(edits):
        text = mutate(text, rng)
    return text


@FUZZ
@given(st.integers(0, 2**32), st.integers(0, 100), st.integers(1, 4))
def test_mutated_example_flows(seed: int, source: int, edits: int) -> None:
    run_pipeline(mutated(seed, source, edits))


def test_a_thousand_seeded_mutations() -> None:
    """The same idea without hypothesis: a fixed seed, many edits, quick to rerun by hand."""
    compiled = 0
    for seed in range(1000):
        text = mutated(seed, seed, 1 + seed % 3)
        try:
            if run_pipeline(text) is not None:
                compiled += 1
        except AssertionError as failure:
            raise AssertionError(f"seed {seed}:\n{text}") from failure
    assert compiled > 0, "some single edits (a changed prompt, say) still compile"


# --------------------------------------------------------------------------- (c) generated flows

NODE_IDS = st.sampled_from(
    [
        "greet",
        "menu",
        "ask",
        "lookup",
        "tell",
        "transfer",
        "goodbye",
        "check",
        "count",
        "wait",
        "main menu",
        "1",
        "transfr",
        "",
    ]
)
TEMPLATE_TEXT = st.sampled_from(
    [
        "Hello!",
        "Hello ${caller_name}!",
        "Balance: $${account.balance}",
        "${}",
        "${caller name}",
        "${unclosed",
        "${ x | upper }",
        "Price: $5",
        "${''.__class__}",
        "{% if %}",
        "${a.}",
        "${x | nope}",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=15),
    TEMPLATE_TEXT,
    NODE_IDS,
)
ANY_VALUE = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)

# One valid node of each type, taken from the every-node-type flow.
NODE_TEMPLATES: dict[str, dict[str, Any]] = {
    node["type"]: node for node in load_text(EVERY_NODE_TYPE, "t.yaml").data["nodes"].values()
}
ENDS_CALL = {"voice_transfer", "voice_hangup", "end"}
EXIT_FIELDS = {"next", "on_error", "on_timeout", "else"}


def exit_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in EXIT_FIELDS and isinstance(item, str):
                yield path + (key,)
            else:
                yield from exit_paths(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from exit_paths(item, path + (index,))


def set_at(value: Any, path: tuple[Any, ...], new: Any) -> None:
    for part in path[:-1]:
        value = value[part]
    value[path[-1]] = new


@st.composite
def wired_flow(draw: st.DrawFn) -> dict[str, Any]:
    """A valid flow: a chain of nodes ending in one that ends the call, other exits anywhere."""
    ids = draw(
        st.lists(
            st.sampled_from(
                [
                    "greet",
                    "menu",
                    "ask",
                    "lookup",
                    "tell",
                    "check",
                    "count",
                    "wait",
                    "record",
                    "survey",
                    "fetch",
                ]
            ),
            min_size=1,
            max_size=6,
            unique=True,
        )
    ) + ["goodbye"]
    middle = sorted(set(NODE_TEMPLATES) - ENDS_CALL)
    nodes: dict[str, Any] = {}
    for index, node_id in enumerate(ids):
        last = index == len(ids) - 1
        node_type = draw(st.sampled_from(sorted(ENDS_CALL) if last else middle))
        node = yaml.safe_load(yaml.safe_dump(NODE_TEMPLATES[node_type]))  # a deep copy
        for number, path in enumerate(exit_paths(node)):
            target = ids[index + 1] if number == 0 else draw(st.sampled_from(ids))
            set_at(node, path, target)
        nodes[node_id] = node
    # Every variable the node templates read is declared: a name nothing sets is an error,
    # and a chain of nodes picked at random may leave out the node that saves it.
    used = ("attempts", "question", "account_number", "account", "reply", "response")
    flow = {
        "flow": "generated",
        "start": ids[0],
        "nodes": nodes,
        "variables": {"caller_name": {"default": "there"}, **{name: {"default": None} for name in used}},
    }
    if draw(st.booleans()):
        flow["settings"] = {"voice": "rachel", "language": "en-US", "no_input_timeout": "5s"}
    return flow


def corrupt(flow: dict[str, Any], draw: st.DrawFn) -> None:
    """One newcomer-style slip in an otherwise valid flow."""
    nodes = flow["nodes"]
    fields_of = {name: node for name, node in nodes.items() if isinstance(node, dict) and node}
    if not fields_of:
        return
    node_id = draw(st.sampled_from(sorted(fields_of)))
    node = nodes[node_id]
    kind = draw(st.integers(0, 9))
    if kind == 0:  # a field gets a value of the wrong kind
        node[draw(st.sampled_from(sorted(node)))] = draw(ANY_VALUE)
    elif kind == 1:  # a field goes missing
        node.pop(draw(st.sampled_from(sorted(node))))
    elif kind == 2:  # an unknown or misspelled field
        node[draw(st.sampled_from(["promt", "Next", "volume", "nxt", "mesage"]))] = "x"
    elif kind == 3:  # a misspelled type
        node["type"] = draw(st.sampled_from([node["type"] + "s", node["type"][:-1], "speak"]))
    elif kind == 4:  # an exit to a misspelled or missing node
        paths = list(exit_paths(node))
        if paths:
            set_at(node, draw(st.sampled_from(paths)), draw(NODE_IDS))
    elif kind == 5:  # a node that is not a set of fields
        nodes[node_id] = draw(SCALARS)
    elif kind == 6:  # a template or condition that does not parse
        text_fields = [
            k for k, v in node.items() if isinstance(v, str) and k not in EXIT_FIELDS and k != "type"
        ]
        if text_fields:
            node[draw(st.sampled_from(text_fields))] = draw(TEMPLATE_TEXT)
    elif kind == 7:  # start or a setting goes wrong
        flow[draw(st.sampled_from(["start", "flow", "settings", "variables"]))] = draw(ANY_VALUE)
    elif kind == 8:  # a node renamed, so exits to it break
        nodes[draw(NODE_IDS)] = nodes.pop(node_id)
    else:  # any field of any node set to anything
        node[draw(st.text(max_size=6))] = draw(ANY_VALUE)


@st.composite
def generated_flow(draw: st.DrawFn) -> str:
    flow = draw(wired_flow())
    for _ in range(draw(st.integers(0, 3))):
        corrupt(flow, draw)
    dump: Callable[[Any], str] = draw(
        st.sampled_from(
            [
                lambda d: yaml.safe_dump(d, sort_keys=False, allow_unicode=True),
                lambda d: yaml.safe_dump(d, sort_keys=False, default_flow_style=True),
            ]
        )
    )
    return dump(flow)


@FUZZ
@given(generated_flow())
def test_generated_flows(text: str) -> None:
    run_pipeline(text)


def test_wired_flows_are_valid() -> None:
    """Uncorrupted generated flows compile, so the generator reaches the compiler."""
    compiled = 0

    @settings(FUZZ, max_examples=50)
    @given(wired_flow())
    def check(flow: dict[str, Any]) -> None:
        nonlocal compiled
        text = yaml.safe_dump(flow, sort_keys=False)
        document = load_text(text, "g.yaml")
        errors = [d.one_line() for d in check_flow_document(document, REGISTRY) if d.is_error]
        assert not errors, (text, errors)
        assert run_pipeline(text) is not None
        compiled += 1

    check()
    assert compiled == 50


@pytest.mark.parametrize("depth", [10, 49, 51, 200, 5000])
def test_deep_nesting_is_a_user_error_not_a_crash(depth: int) -> None:
    run_pipeline("a: " + "[" * depth + "]" * depth + "\n")
    run_pipeline("".join(" " * i + f"k{i}:\n" for i in range(depth if depth < 1000 else 300)))


def test_anchor_bombs_and_self_references_are_user_errors() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n" for i in range(8)
    )
    with pytest.raises(VoxflowError):
        load_text(bomb, "bomb.yaml")
    for text in ("a: &x [*x]\n", "a: &x {b: *x}\n", "a: !!int x\n", "a: !!float 0x1\n"):
        with pytest.raises(VoxflowError):
            load_text(text, "f.yaml")


def test_the_command_never_crashes_on_mutated_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through `voxflow validate` too: printing with the lines around must not crash either."""
    from engine.cli.main import main

    for seed in range(150):
        path = tmp_path / f"flow-{seed}.yaml"
        text = mutated(seed + 10_000, seed, 1 + seed % 3)
        path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
        for args in (["validate", str(path)], ["validate", str(path), "--format", "json"]):
            code = main(args)
            out, err = capsys.readouterr()
            assert code in (0, 1), f"seed {seed}: exit code {code}\n{err}\n{text}"
            assert "Traceback" not in out + err
