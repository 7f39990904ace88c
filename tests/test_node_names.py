"""The engine names no built-in node type: what it needs to know of a node, the node says
through its attributes (engine.plugin_api), so a third party's node is treated like voxflow's.

The names are read from the ``voxflow.nodes`` entry points in pyproject.toml (the one place
that registers them). A name with ``_`` in it (``http_request``, ``voice_listen``) may not
appear anywhere in engine/, code, strings, comments or the monitor page alike; nor may a
prefix of such names used as a test (``startswith("voice_")``). A one-word name (``llm``,
``end``, ``set``) is an ordinary word too, so for those only a text that is exactly the name
counts, and the few that mean something else are listed below with what they mean.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "engine"
TEXT_SUFFIXES = {".py", ".js", ".html", ".css", ".md", ".json", ".txt", ".typed"}

# (file, text): the same word, meaning something other than the node type. Keep it short.
HOMONYMS = {
    ("engine/language/registry.py", "end"): "the ENGINE_ROLE 'end' (ends the flow), one of ENGINE_ROLES",
    ("engine/runtime/call_walk.py", "end"): "the ENGINE_ROLE 'end', looked up in BUILTIN.roles",
    ("engine/runtime/workflow.py", "end"): "the ENGINE_ROLE 'end', looked up in BUILTIN.roles",
    ("engine/simulate/coverage.py", "end"): "the ENGINE_ROLE 'end'",
    ("engine/language/graph_checks.py", "end"): "the ENGINE_ROLE 'end', one of the roles that end a call",
    ("engine/simulate/terminal.py", "end"): "the kind of line a chat shows when the call ended",
    ("engine/simulate/chat.py", "end"): "the kind of line a chat shows when the call ended",
    ("engine/cli/chat_audio.py", "end"): "the kind of line a chat shows when the call ended",
    ("engine/cli/chat_server.py", "end"): "the kind of line a chat shows when the call ended",
    ("engine/language/registry.py", "subflow"): "the DIAGRAM_SHAPE 'subflow', one of DIAGRAM_SHAPES",
    ("engine/authoring/render/__init__.py", "subflow"): "the diagram shape 'subflow'",
    ("engine/authoring/render/dot.py", "subflow"): "how Graphviz draws the shape 'subflow'",
    ("engine/authoring/render/mermaid.py", "subflow"): "how Mermaid draws the shape 'subflow'",
    ("engine/runtime/config.py", "llm"): "the 'llm' section of voxflow.yaml (the LLM endpoint)",
    ("engine/connections/kinds.py", "llm"): "the connection kind 'llm' (the LLM endpoint)",
    ("engine/connections/checks.py", "llm"): "the check of an 'llm' connection",
}


def built_in_names() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    names = sorted(project["project"]["entry-points"]["voxflow.nodes"])
    assert len(names) >= 10, names
    return names


def engine_files() -> Iterator[Path]:
    for path in sorted(ENGINE.rglob("*")):
        if path.is_file() and path.suffix in TEXT_SUFFIXES and "__pycache__" not in path.parts:
            yield path


def test_no_built_in_name_with_an_underscore_appears_in_the_engine() -> None:
    names = [name for name in built_in_names() if "_" in name]
    # Prefixes shared by built-in names, as a test would write them: "voice_", "http_".
    prefixes = sorted({name[: name.index("_") + 1] for name in names})
    pattern = re.compile(
        r"\b(?:"
        + "|".join(map(re.escape, names))
        + r")\b"
        + r"|[\"'](?:"
        + "|".join(map(re.escape, prefixes))
        + r")[\"']"
    )
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in engine_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == [], (
        "built-in node types named in the engine; say what the engine needs through a node "
        "attribute (engine.plugin_api) instead:\n" + "\n".join(found)
    )


def test_one_word_built_in_names_appear_only_as_other_words() -> None:
    names = {name for name in built_in_names() if "_" not in name}
    found = []
    seen_homonyms = set()
    for path in engine_files():
        if path.suffix != ".py":
            continue
        relative = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                if (relative, node.value) in HOMONYMS:
                    seen_homonyms.add((relative, node.value))
                else:
                    found.append(f"{relative}:{node.lineno}: {node.value!r}")
    assert found == [], (
        "built-in node types named in the engine; say what the engine needs through a node "
        "attribute (engine.plugin_api), or, if the word means something else there, add it "
        "to HOMONYMS with what it means:\n" + "\n".join(found)
    )
    assert seen_homonyms == set(HOMONYMS), f"no longer used, remove: {set(HOMONYMS) - seen_homonyms}"


def test_the_check_finds_a_name() -> None:
    """The patterns above do match what they look for (so the tests can fail)."""
    names = [name for name in built_in_names() if "_" in name]
    assert "http_request" in names and any(name.startswith("voice_") for name in names)
    line = 'if node_type.startswith("voice_"):'
    prefixes = sorted({name[: name.index("_") + 1] for name in names})
    assert re.search(r"[\"'](?:" + "|".join(map(re.escape, prefixes)) + r")[\"']", line)
