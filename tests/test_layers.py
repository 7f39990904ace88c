"""The import boundaries, read from the source with ast (no module is imported).

- A node plugin uses voxflow only through ``engine.plugin_api``: plugins/ (the
  built-ins, written the way a third party writes one) may import nothing else of
  engine, so everything a node author needs is in that one public module.
- The runtime imports nothing from plugins/: the workflow learns which node types
  it runs itself from the plugins' own attributes (engine.runtime.builtin_nodes).
- engine/ is layered (docs/architecture.md, "Layers"): a module imports only from
  its own layer and the layers below it. Nothing below cli imports cli.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """Every module a file imports (absolute names), with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


# From the bottom up. Each name is engine.<name> (a module or a package, with everything in it).
LAYERS: tuple[tuple[str, ...], ...] = (
    # what every stage shares: errors, "did you mean", printing for people, traces
    ("core",),
    # the flow language: load → validate → compile
    ("language",),
    # tools over compiled flows: diagrams, the node reference, diffs
    ("authoring",),
    # running a call
    ("runtime", "voice", "connections", "numbers"),
    # the one module node plugins import
    ("plugin_api",),
    # the authoring tools that run flows without a phone
    ("simulate",),
    # the voice agent (its audio chat drives a simulated call)
    ("agent",),
    # the server, and the local LiveKit test bed built around it
    ("server", "testbed"),
    # commands
    ("cli", "dev"),
)
# Imports that run back up, each with why it stays. Keep this list short.
KNOWN_EXCEPTIONS = {
    # `voxflow connections check` reads a Telnyx public key the way the server does; the
    # check runs only from the command line.
    ("engine.connections.checks", "engine.server.telnyx"),
}


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "engine" or len(parts) < 2:
        return None
    for level, names in enumerate(LAYERS):
        if parts[1] in names:
            return level
    return None


def test_every_engine_module_has_a_layer() -> None:
    unplaced = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "engine").rglob("*.py")
        if path.name != "__init__.py" or path.parent != ROOT / "engine"
        if layer_of(module_name(path)) is None
    )
    assert unplaced == [], "add these to LAYERS in tests/test_layers.py:\n" + "\n".join(unplaced)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def test_no_import_runs_back_up_the_layers() -> None:
    upward = []
    for path in sorted((ROOT / "engine").rglob("*.py")):
        name = module_name(path)
        level = layer_of(name)
        if level is None:
            continue
        for line, module in imported_modules(path):
            target = layer_of(module)
            if target is None or target <= level:
                continue
            target_module = ".".join(module.split(".")[:3])
            if any(name == a and module.startswith(b) for a, b in KNOWN_EXCEPTIONS):
                continue
            upward.append(
                f"{path.relative_to(ROOT)}:{line}: imports {target_module} "
                f"(layer {target}, above its own {level})"
            )
    assert upward == [], (
        "imports that run back up the layers (docs/architecture.md): move the shared code "
        "down, or pass it in:\n" + "\n".join(sorted(set(upward)))
    )


def test_the_layer_check_sees_an_upward_import() -> None:
    assert layer_of("engine.server.reload") > layer_of("engine.core.output")  # type: ignore[operator]
    assert layer_of("engine.cli.output") == len(LAYERS) - 1
    assert layer_of("plugins.voice_listen") is None


def test_plugins_use_engine_only_through_plugin_api() -> None:
    reaching = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in sorted((ROOT / "plugins").glob("*.py"))
        for line, module in imported_modules(path)
        if module.split(".")[0] == "engine"
        and not (module == "engine.plugin_api" or module.startswith("engine.plugin_api."))
    ]
    assert reaching == [], (
        "node plugins must import voxflow only through engine.plugin_api (add what they "
        "need there):\n" + "\n".join(reaching)
    )


def test_engine_imports_nothing_from_plugins() -> None:
    reaching = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in sorted((ROOT / "engine").rglob("*.py"))
        for line, module in imported_modules(path)
        if module.split(".")[0] == "plugins"
    ]
    assert reaching == [], "\n".join(reaching)


def test_the_check_sees_a_reaching_import(tmp_path: Path) -> None:
    source = tmp_path / "node.py"
    source.write_text("from engine.voice.nodes import open_channel\nimport engine.plugin_api\n")
    assert list(imported_modules(source)) == [
        (1, "engine.voice.nodes"),
        (1, "engine.voice.nodes.open_channel"),
        (2, "engine.plugin_api"),
    ]
