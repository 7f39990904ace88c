"""Runtime configuration: named database connections and the LLM endpoint.

Flows name things ("connection: accounts"); where those things are is
configuration, kept out of flow files so the same flow runs against a test
database on a laptop and the real one in production. Two sources, the
environment winning over the file:

Environment variables
    ``VOXFLOW_DATABASE_<NAME>=<url>`` defines the connection ``<name>``
    (lower-cased: ``VOXFLOW_DATABASE_ACCOUNTS`` is ``accounts``). URLs are
    ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``,
    ``sqlite:///:memory:`` or ``postgresql://user:password@host:5432/dbname``.

    ``VOXFLOW_LLM_BASE_URL`` (default ``OPENAI_BASE_URL``, then
    ``https://api.openai.com/v1``), ``VOXFLOW_LLM_MODEL`` (default
    ``gpt-4o-mini``) and ``VOXFLOW_LLM_API_KEY`` (default ``OPENAI_API_KEY``)
    name any OpenAI-compatible chat completions endpoint: OpenAI, a local
    server, or another compatible service.

``voxflow.yaml``
    Read from the path in ``VOXFLOW_CONFIG``, or ``./voxflow.yaml`` when it
    exists::

        databases:
          accounts: sqlite:///data/accounts.db      # relative to this file
        llm:
          base_url: http://localhost:8080/v1
          model: llama3
          api_key_env: MY_LLM_KEY                   # read the key from this variable

    Keys are better kept in the environment; ``llm.api_key`` is accepted too.

Stored connections (``voxflow connections``)
    A flow's ``connection: NAME`` also finds a stored database connection of
    that name; ``VOXFLOW_CONNECTIONS`` may name an llm connection, whose values
    stand for the ``VOXFLOW_LLM_*`` variables (engine.connections.environment).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.connections.environment import with_connections
from engine.core.errors import VoxflowError
from engine.runtime.service_types import LlmSettings

DATABASE_PREFIX = "VOXFLOW_DATABASE_"
DEFAULT_LLM_BASE_URL = "https://api.openai.com/v1"
DEFAULT_LLM_MODEL = "gpt-4o-mini"
CONFIG_FILE_NAME = "voxflow.yaml"
_URL_SCHEMES = ("sqlite", "postgresql", "postgres")


@dataclass(frozen=True)
class RuntimeConfig:
    """Where a worker finds the things flows refer to by name."""

    databases: dict[str, str] = field(default_factory=dict)
    llm: LlmSettings = field(default_factory=lambda: LlmSettings(DEFAULT_LLM_BASE_URL, DEFAULT_LLM_MODEL))
    source: str = "defaults"

    def database_url(self, name: str) -> str:
        try:
            return self.databases[name]
        except KeyError:
            stored = _stored_database(name)
            if stored is not None:
                return stored
            known = ", ".join(sorted(self.databases)) or "none"
            raise VoxflowError(
                f"no database connection named '{name}' is configured (configured: {known}). "
                f"Set {DATABASE_PREFIX}{name.upper()} to its URL, for example "
                f"sqlite:///data/{name}.db, add it under 'databases:' in {CONFIG_FILE_NAME}, "
                f"or store it: voxflow connections add {name} database."
            ) from None


def _stored_database(name: str) -> str | None:
    """A stored database connection of that name (engine.connections), if there is one."""
    from engine.connections.store import default_store

    store = default_store()
    if not store.path.is_file() or name not in store.names("database"):
        return None
    connection = store.get(name)
    return _check_url(name, connection.require("url"), Path.cwd(), where=f"connection {name}")


def load_runtime_config(
    environ: Mapping[str, str] | None = None, config_file: str | Path | None = None
) -> RuntimeConfig:
    """Read the config file (if any), then let the environment override it."""
    env = with_connections(os.environ if environ is None else environ)
    path = _config_path(env, config_file)
    file_data = _read_config_file(path) if path is not None else {}
    base_dir = path.parent if path is not None else Path.cwd()

    databases: dict[str, str] = {}
    for name, url in (file_data.get("databases") or {}).items():
        databases[str(name)] = _check_url(str(name), str(url), base_dir, where=str(path))
    for key, url in env.items():
        if key.startswith(DATABASE_PREFIX) and len(key) > len(DATABASE_PREFIX) and url.strip():
            name = key[len(DATABASE_PREFIX) :].lower()
            databases[name] = _check_url(name, url.strip(), Path.cwd(), where=key)

    llm_file = file_data.get("llm") or {}
    if not isinstance(llm_file, Mapping):
        raise VoxflowError(f"{path}: 'llm' must be a mapping with base_url, model and api_key_env.")
    key_env = llm_file.get("api_key_env")
    llm = LlmSettings(
        base_url=(
            _env(env, "VOXFLOW_LLM_BASE_URL")
            or llm_file.get("base_url")
            or _env(env, "OPENAI_BASE_URL")
            or DEFAULT_LLM_BASE_URL
        ).rstrip("/"),
        model=_env(env, "VOXFLOW_LLM_MODEL") or llm_file.get("model") or DEFAULT_LLM_MODEL,
        api_key=(
            _env(env, "VOXFLOW_LLM_API_KEY")
            or (_env(env, str(key_env)) if key_env else None)
            or llm_file.get("api_key")
            or _env(env, "OPENAI_API_KEY")
        ),
    )
    source = f"{path} and the environment" if path is not None else "the environment"
    return RuntimeConfig(databases=databases, llm=llm, source=source)


def _env(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _config_path(env: Mapping[str, str], explicit: str | Path | None) -> Path | None:
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise VoxflowError(f"{explicit}: no such configuration file.")
        return path
    named = _env(env, "VOXFLOW_CONFIG")
    if named:
        if not Path(named).is_file():
            raise VoxflowError(f"VOXFLOW_CONFIG names {named}, which does not exist.")
        return Path(named)
    default = Path(CONFIG_FILE_NAME)
    return default if default.is_file() else None


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise VoxflowError(f"{path}: cannot be read: {error.strerror or error}.") from None
    except yaml.YAMLError as error:
        raise VoxflowError(f"{path}: this is not valid YAML: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise VoxflowError(f"{path}: expected 'databases:' and 'llm:' sections at the top.")
    unknown = sorted(set(data) - {"databases", "llm"})
    if unknown:
        raise VoxflowError(
            f"{path}: unknown section(s) {', '.join(unknown)}; only 'databases' and 'llm' are read."
        )
    if not isinstance(data.get("databases") or {}, dict):
        raise VoxflowError(f"{path}: 'databases' must map connection names to URLs.")
    return data


def _check_url(name: str, url: str, base_dir: Path, where: str) -> str:
    """Validate a database URL and make relative SQLite paths absolute."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in _URL_SCHEMES:
        raise VoxflowError(
            f"{where}: the database URL for '{name}' should start with sqlite:/// or "
            f"postgresql://, not '{url.split('://')[0]}'."
        )
    if scheme != "sqlite":
        return url
    if not rest.startswith("/"):
        raise VoxflowError(f"{where}: write SQLite URLs with three slashes: sqlite:///path/to/{name}.db.")
    file_part = rest[1:]
    if file_part == ":memory:" or file_part.startswith("/"):
        return url
    return "sqlite:///" + str((base_dir / file_part).resolve())
