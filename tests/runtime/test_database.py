"""SQL placeholders, bound parameters, SQLite and a real PostgreSQL (tests/postgres_fixture.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine.core.errors import VoxflowError
from engine.plugin_api import NodeContext
from engine.runtime.config import RuntimeConfig
from engine.runtime.database import SqliteDatabase, placeholders, to_pyformat
from engine.runtime.services import RuntimeServices
from plugins import database_query

INJECTIONS = [
    "Robert'); DROP TABLE people;--",
    "' OR '1'='1",
    "%(name)s %s %% ? $1 :name ::text",
    "\\'; SELECT pg_sleep(5); --",
]


def test_placeholders_skip_strings_comments_and_casts() -> None:
    sql = (
        "SELECT ':not_me', \"col:x\", $$ :dollar $$, amount::numeric -- :comment\n"
        "FROM t /* :block */ WHERE a = :a AND b = :b_2 AND c = ':x''s' AND d=:a"
    )
    assert [p.name for p in placeholders(sql)] == ["a", "b_2", "a"]


def test_to_pyformat_binds_and_escapes_percent() -> None:
    assert to_pyformat("SELECT '50%' AS p, x::int FROM t WHERE name LIKE :q AND id = :id") == (
        "SELECT '50%%' AS p, x::int FROM t WHERE name LIKE %(q)s AND id = %(id)s"
    )


def test_missing_parameter_is_named() -> None:
    database = SqliteDatabase("sqlite:///:memory:")
    with pytest.raises(VoxflowError, match=r"uses :who but 'params' gives no value for it"):
        asyncio.run(database.query("SELECT :who", {}))


def _execute(services: RuntimeServices, connection: str, query: str, params: dict) -> dict:
    config = {"connection": connection, "query": query, "params": params, "next": "x"}
    result = asyncio.run(database_query.execute(config, NodeContext("c", "n", {}), services))
    return dict(result.outputs)


def test_sqlite_stores_injection_strings_as_data(tmp_path: Path) -> None:
    services = RuntimeServices(RuntimeConfig(databases={"db": f"sqlite:///{tmp_path / 'x.db'}"}))
    _execute(services, "db", "CREATE TABLE people (name TEXT, n INTEGER)", {})
    for index, text in enumerate(INJECTIONS):
        assert (
            _execute(services, "db", "INSERT INTO people VALUES (:name, :n)", {"name": text, "n": index})[
                "row_count"
            ]
            == 1
        )
    for index, text in enumerate(INJECTIONS):
        found = _execute(services, "db", "SELECT name, n FROM people WHERE name = :name", {"name": text})
        assert (found["name"], found["n"], found["row_count"]) == (text, index, 1)
    everything = _execute(services, "db", "SELECT name FROM people ORDER BY n", {})
    assert [row["name"] for row in everything["rows"]] == INJECTIONS


def test_unknown_connection_says_how_to_configure_it() -> None:
    services = RuntimeServices(RuntimeConfig(databases={"main": "sqlite:///:memory:"}))
    with pytest.raises(
        VoxflowError,
        match=r"no database connection named 'accounts'.*"
        r"VOXFLOW_DATABASE_ACCOUNTS",
    ):
        _execute(services, "accounts", "SELECT 1", {})


# -- PostgreSQL: the session's server (tests/postgres_fixture.py) ---------------


def test_postgresql_binds_parameters(postgres_database: str) -> None:
    services = RuntimeServices(RuntimeConfig(databases={"pg": postgres_database}))
    _execute(services, "pg", "CREATE TABLE people (name TEXT, n INTEGER, balance NUMERIC)", {})
    for index, text in enumerate(INJECTIONS):
        inserted = _execute(
            services, "pg", "INSERT INTO people VALUES (:name, :n, :n * 1.5)", {"name": text, "n": index}
        )
        assert inserted["row_count"] == 1
    for index, text in enumerate(INJECTIONS):
        found = _execute(
            services,
            "pg",
            "SELECT name, n, balance, '100%' AS pct, n::text AS n_text, ':n' AS literal "
            "FROM people WHERE name = :name",
            {"name": text},
        )
        assert (found["name"], found["n"], found["row_count"]) == (text, index, 1)
        assert found["balance"] == index * 1.5
        assert (found["pct"], found["n_text"], found["literal"]) == ("100%", str(index), ":n")
    count = _execute(services, "pg", "SELECT count(*) AS total FROM people", {})
    assert count["total"] == len(INJECTIONS)  # the table is still there, nothing else ran
