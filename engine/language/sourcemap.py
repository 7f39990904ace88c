"""Where each value of a loaded YAML file came from, by document path."""

from __future__ import annotations

from dataclasses import dataclass, field

# A document path: the keys and list indexes from the top of the file down to
# a value, e.g. ("nodes", "menu", "options", 1, "next").
DocPath = tuple[str | int, ...]


def format_path(path: DocPath) -> str:
    """``("nodes", "menu", "options", 1, "next")`` → ``nodes.menu.options[1].next``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


@dataclass
class SourceMap:
    """Line and column (1-based) of every value and every mapping key in one file.

    ``locate`` falls back to the nearest enclosing value, so a problem with a
    missing field points at the mapping that should contain it.
    """

    file: str
    lines: tuple[str, ...]
    values: dict[DocPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[DocPath, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: DocPath, at_key: bool = False) -> tuple[int, int]:
        """Position of ``path``'s value (or of its key when ``at_key``)."""
        if at_key and path in self.keys:
            return self.keys[path]
        probe = path
        while True:
            if probe in self.values:
                return self.values[probe]
            if probe in self.keys:
                return self.keys[probe]
            if not probe:
                return (1, 1)
            probe = probe[:-1]

    def locate_key(self, path: DocPath) -> tuple[int, int]:
        return self.locate(path, at_key=True)
