"""The import boundaries, read from the source with ast (no module is imported).

- A node plugin uses voxflow only through ``engine.plugin_api``: plugins/ (the
  built-ins, written the way a third party writes one) may import nothing else of
  engine, so everything a node author needs is in that one public module.
- The runtime imports nothing from plugins/: the workflow learns which node types
  it runs itself from the plugins' own attributes (engine.runtime.builtin_nodes).
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
        (1, "engine.voice.nodes"), (1, "engine.voice.nodes.open_channel"), (2, "engine.plugin_api"),
    ]
