"""SQL for the nodes that query a database connection: SQLite and PostgreSQL, bound parameters only.

Flow authors write ``:name`` placeholders and give values in ``params``. The
values always travel as bound parameters — for SQLite natively (sqlite3
understands ``:name``), for PostgreSQL translated to psycopg's ``%(name)s``,
which psycopg 3 sends to the server separately from the SQL text. The SQL text
itself is never built from values, so what a caller says cannot change a query.

:func:`placeholders` finds ``:name`` outside quoted strings, quoted names and
comments, and leaves PostgreSQL's ``::type`` casts alone.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.core.errors import VoxflowError
from engine.runtime.service_types import QueryResult

# Rows beyond this are not returned (a call needs a few rows, not a table).
MAX_ROWS = 1000


@dataclass(frozen=True)
class Placeholder:
    name: str
    start: int  # index of the ':'
    end: int  # index after the name


def placeholders(sql: str) -> list[Placeholder]:
    """Every ``:name`` placeholder of ``sql`` that is really SQL, not text or a cast."""
    found: list[Placeholder] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in ("'", '"', "`"):
            i = _skip_quoted(sql, i, ch)
        elif ch == "-" and sql.startswith("--", i):
            newline = sql.find("\n", i)
            i = n if newline == -1 else newline + 1
        elif ch == "/" and sql.startswith("/*", i):
            close = sql.find("*/", i + 2)
            i = n if close == -1 else close + 2
        elif ch == "$" and (dollar := _dollar_tag(sql, i)) is not None:
            close = sql.find(dollar, i + len(dollar))  # PostgreSQL $$ ... $$ strings
            i = n if close == -1 else close + len(dollar)
        elif ch == ":":
            if sql.startswith("::", i):
                i += 2
                continue
            j = i + 1
            if j < n and (sql[j].isalpha() or sql[j] == "_"):
                while j < n and (sql[j].isalnum() or sql[j] == "_"):
                    j += 1
                found.append(Placeholder(sql[i + 1 : j], i, j))
                i = j
            else:
                i += 1
        else:
            i += 1
    return found


def _skip_quoted(sql: str, start: int, quote: str) -> int:
    i = start + 1
    while i < len(sql):
        if sql[i] == quote:
            if i + 1 < len(sql) and sql[i + 1] == quote:  # '' inside a string
                i += 2
                continue
            return i + 1
        i += 1
    return len(sql)


def _dollar_tag(sql: str, start: int) -> str | None:
    end = sql.find("$", start + 1)
    if end == -1:
        return None
    tag = sql[start : end + 1]
    inner = tag[1:-1]
    if inner == "" or (inner.replace("_", "a").isalnum() and not inner[0].isdigit()):
        return tag
    return None


def check_params(sql: str, params: Mapping[str, Any]) -> list[str]:
    """The placeholder names in order; raise when a value is missing."""
    names = [p.name for p in placeholders(sql)]
    missing = sorted({name for name in names if name not in params})
    if missing:
        raise VoxflowError(
            f"the query uses :{', :'.join(missing)} but 'params' gives no value for "
            f"{'it' if len(missing) == 1 else 'them'}; add "
            f"{', '.join(f'{name}: ...' for name in missing)} under params."
        )
    return names


def to_pyformat(sql: str) -> str:
    """``:name`` → ``%(name)s`` for psycopg, doubling every literal ``%``."""
    parts: list[str] = []
    last = 0
    for holder in placeholders(sql):
        parts.append(sql[last : holder.start].replace("%", "%%"))
        parts.append(f"%({holder.name})s")
        last = holder.end
    parts.append(sql[last:].replace("%", "%%"))
    return "".join(parts)


def bind_value(value: Any) -> Any:
    """Values as a database accepts them: lists and mappings become JSON text."""
    if value is None or isinstance(value, (str, int, float, bool, bytes)):
        return value
    return json.dumps(value, default=str)


def plain(value: Any) -> Any:
    """A column value as JSON-able data for the call's variables."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return str(value)  # dates, times, UUIDs


class SqliteDatabase:
    """A SQLite file (or ``:memory:``); each query opens its own connection in a thread."""

    def __init__(self, url: str) -> None:
        self.path = url[len("sqlite:///") :]

    async def query(self, sql: str, params: Mapping[str, Any]) -> QueryResult:
        names = check_params(sql, params)
        bound = {name: bind_value(params[name]) for name in set(names)}
        return await asyncio.to_thread(self._run, sql, bound)

    def _run(self, sql: str, bound: dict[str, Any]) -> QueryResult:
        connection = sqlite3.connect(self.path, timeout=10)
        try:
            cursor = connection.execute(sql, bound)
            if cursor.description is None:
                connection.commit()
                return QueryResult([], max(cursor.rowcount, 0))
            columns = [d[0] for d in cursor.description]
            rows = [dict(zip(columns, map(plain, row), strict=True)) for row in cursor.fetchmany(MAX_ROWS)]
            connection.commit()  # INSERT ... RETURNING
            return QueryResult(rows, len(rows))
        finally:
            connection.close()


class PostgresDatabase:
    """A PostgreSQL server through psycopg 3 (one connection per query)."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def query(self, sql: str, params: Mapping[str, Any]) -> QueryResult:
        names = check_params(sql, params)
        bound = {name: bind_value(params[name]) for name in set(names)}
        try:
            import psycopg
        except ImportError:  # pragma: no cover - psycopg is a dependency
            raise VoxflowError(
                "PostgreSQL connections need psycopg: pip install 'psycopg[binary]'."
            ) from None
        async with await psycopg.AsyncConnection.connect(self.url) as connection:
            async with connection.cursor() as cursor:
                await cursor.execute(to_pyformat(sql), bound)  # type: ignore[arg-type]
                if cursor.description is None:
                    return QueryResult([], max(cursor.rowcount, 0))
                columns = [d.name for d in cursor.description]
                fetched = await cursor.fetchmany(MAX_ROWS)
                rows = [dict(zip(columns, map(plain, row), strict=True)) for row in fetched]
                return QueryResult(rows, len(rows))


def open_database(url: str) -> SqliteDatabase | PostgresDatabase:
    if url.startswith("sqlite:///"):
        return SqliteDatabase(url)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(url)
    raise VoxflowError(f"unsupported database URL '{url.split('://')[0]}://...'.")
