"""The connections file: names and kinds in the clear, every value encrypted (Fernet).

``.voxflow/connections.json`` (or ``VOXFLOW_CONNECTIONS_FILE``) holds, per
connection, its kind, when it was added, which fields are set, and one
Fernet token with the values. The key is ``VOXFLOW_SECRET_KEY`` (a Fernet
key), or the file named by ``VOXFLOW_SECRET_KEY_FILE``, or
``~/.config/voxflow/secret.key``, which ``voxflow connections add`` creates
(readable by its owner only) the first time. The encrypted text also holds the
connection's name and kind, so a token moved to another entry is refused.

Values are never printed or logged: :class:`Connection`'s ``repr`` shows the
field names only.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from engine.connections.kinds import KINDS, ConnectionKind
from engine.core.errors import VoxflowError

DEFAULT_FILE = Path(".voxflow") / "connections.json"
FORMAT = 1
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class Connection:
    name: str
    kind: str
    values: Mapping[str, str] = field(repr=False)
    added: str = ""

    def __repr__(self) -> str:  # the values stay out of logs and tracebacks
        return f"Connection(name={self.name!r}, kind={self.kind!r}, fields={sorted(self.values)})"

    def value(self, name: str) -> str | None:
        """The field's value, or its kind's default."""
        given = self.values.get(name)
        if given:
            return given
        spec = KINDS[self.kind].field(name)
        return spec.default if spec else None

    def require(self, name: str) -> str:
        value = self.value(name)
        if not value:
            raise VoxflowError(
                f"the connection '{self.name}' has no {name}: add it again with "
                f"`voxflow connections add {self.name} {self.kind}`."
            )
        return value


@dataclass(frozen=True)
class StoredEntry:
    """What the file says about a connection without decrypting it."""

    name: str
    kind: str
    fields: tuple[str, ...]
    added: str


def default_key_file(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "voxflow" / "secret.key"


class ConnectionStore:
    def __init__(self, path: Path, env: Mapping[str, str] | None = None) -> None:
        self.path = path
        self._env = dict(os.environ if env is None else env)

    # ---- the key ----------------------------------------------------------

    def key_source(self) -> str:
        if self._env.get("VOXFLOW_SECRET_KEY", "").strip():
            return "VOXFLOW_SECRET_KEY"
        return str(self._key_file())

    def _key_file(self) -> Path:
        named = self._env.get("VOXFLOW_SECRET_KEY_FILE", "").strip()
        return Path(named) if named else default_key_file(self._env)

    def _fernet(self, create: bool = False) -> tuple[Fernet, str | None]:
        """The cipher; with ``create``, a new key file when there is no key (its path returned)."""
        text = self._env.get("VOXFLOW_SECRET_KEY", "").strip()
        where = "VOXFLOW_SECRET_KEY"
        made = None
        if not text:
            key_file = self._key_file()
            where = str(key_file)
            if key_file.is_file():
                text = key_file.read_text(encoding="utf-8").strip()
            elif create:
                key_file.parent.mkdir(parents=True, exist_ok=True)
                text = Fernet.generate_key().decode()
                descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "w", encoding="utf-8") as out:
                    out.write(text + "\n")
                made = str(key_file)
            else:
                raise VoxflowError(
                    f"the connections in {self.path} cannot be read: there is no key. Set "
                    f"VOXFLOW_SECRET_KEY, or VOXFLOW_SECRET_KEY_FILE to the key file they were "
                    f"stored with (by default {key_file})."
                )
        try:
            return Fernet(text.encode()), made
        except (ValueError, TypeError):
            raise VoxflowError(
                f"the key in {where} is not a Fernet key (44 characters of URL-safe base64). "
                "Make one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            ) from None

    # ---- the file -----------------------------------------------------------

    def _read(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {}
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise VoxflowError(
                f"{self.path}: cannot be read as a connections file ({error}). "
                "Remove it and add the connections again."
            ) from None
        entries = document.get("connections") if isinstance(document, dict) else None
        if not isinstance(entries, dict):
            raise VoxflowError(f"{self.path}: not a voxflow connections file (no 'connections').")
        return entries

    def _write(self, entries: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            json.dump({"format": FORMAT, "connections": entries}, out, indent=2, sort_keys=True)
            out.write("\n")
        os.replace(temporary, self.path)

    # ---- what commands use ----------------------------------------------------

    def entries(self) -> list[StoredEntry]:
        """Every connection, without decrypting anything."""
        return [
            StoredEntry(
                name, str(entry.get("kind")), tuple(entry.get("fields") or ()), str(entry.get("added") or "")
            )
            for name, entry in sorted(self._read().items())
        ]

    def names(self, kind: str | None = None) -> list[str]:
        return [e.name for e in self.entries() if kind is None or e.kind == kind]

    def has(self, name: str) -> bool:
        return name in self._read()

    def get(self, name: str) -> Connection:
        entries = self._read()
        entry = entries.get(name)
        if entry is None:
            known = ", ".join(sorted(entries)) or "none yet"
            raise VoxflowError(
                f"there is no connection named '{name}' in {self.path} (stored: {known}). "
                f"Add it with `voxflow connections add {name} KIND`."
            )
        fernet, _ = self._fernet()
        try:
            secret = json.loads(fernet.decrypt(str(entry.get("secret", "")).encode()))
        except InvalidToken:
            raise VoxflowError(
                f"the connection '{name}' in {self.path} was stored with another key than "
                f"{self.key_source()}. Use the key it was stored with (VOXFLOW_SECRET_KEY or "
                f"VOXFLOW_SECRET_KEY_FILE), or add the connection again."
            ) from None
        if secret.get("name") != name or secret.get("kind") != entry.get("kind"):
            raise VoxflowError(
                f"the connection '{name}' in {self.path} holds another "
                "connection's values (the file was edited). Add it again."
            )
        return Connection(
            name, secret["kind"], dict(secret.get("values") or {}), str(entry.get("added") or "")
        )

    def add(self, name: str, kind: ConnectionKind, values: Mapping[str, str]) -> str | None:
        """Store (or replace) a connection; returns the path of a key file made for it."""
        if not NAME_PATTERN.match(name):
            raise VoxflowError(
                f"'{name}' cannot name a connection: use letters, digits, - and _, starting with a letter."
            )
        fernet, made = self._fernet(create=True)
        entries = self._read()
        kept = {k: v for k, v in values.items() if v}
        token = fernet.encrypt(
            json.dumps({"name": name, "kind": kind.name, "values": kept}).encode()
        ).decode()
        entries[name] = {
            "kind": kind.name,
            "fields": sorted(kept),
            "secret": token,
            "added": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        self._write(entries)
        return made

    def remove(self, name: str) -> bool:
        """False when there was no such connection."""
        entries = self._read()
        if entries.pop(name, None) is None:
            return False
        self._write(entries)
        return True


def default_store(env: Mapping[str, str] | None = None) -> ConnectionStore:
    env = os.environ if env is None else env
    named = env.get("VOXFLOW_CONNECTIONS_FILE", "").strip()
    return ConnectionStore(Path(named) if named else DEFAULT_FILE, env)
