"""Runs one SQL query on a named database connection and saves the result.

Values go in ``params`` and are referred to as ``:name`` in the query; they
are always sent as bound parameters, never pasted into the SQL text, so what
a caller says can never change the query. The first row's columns are saved
under ``save_as`` (``${account.balance}``), along with ``rows`` (all rows)
and ``row_count``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.plugin_api import (
    NODE_REF,
    RAW_TEXT,
    VARIABLE_NAME,
    AnswerProblem,
    NodeContext,
    NodeResult,
    Services,
    activity_services,
)

NODE_TYPE = "database_query"
DOC = __doc__ or ""
RUNS_IN = "activity"
OUTPUTS = {
    "<column>": "Each column of the first row.",
    "rows": "All rows, as a list.",
    "row_count": "The number of rows returned or changed.",
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["connection", "query", "next"],
    "properties": {
        "connection": {
            "type": "string",
            "minLength": 1,
            "description": "The name of a database connection in voxflow's configuration.",
        },
        "query": {
            **RAW_TEXT,
            "minLength": 1,
            "description": "The SQL, with :name for each value from params (no ${...}, {% %} "
            "or {# #} in it: it is used exactly as written).",
        },
        "params": {
            "type": "object",
            "description": "The query's values, by name; may use ${variables}.",
            "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
        },
        "save_as": {**VARIABLE_NAME, "description": "Save the result under this name."},
        "next": {**NODE_REF, "description": "Where to go after the query."},
    },
}


# A fixed answer in `voxflow test` / `voxflow chat --answers`: {rows: [{balance: 42.17}]}.
ANSWER_FIELDS = {
    "rows": "The rows the query returns, each a set of 'column: value' lines.",
    "row_count": "The number of rows returned or changed (default: how many rows are given).",
}


def simulated_outputs(answer: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """The outputs of a fixed answer, shaped as execute shapes a real result."""
    rows = answer.get("rows") or []
    if not isinstance(rows, list) or not all(isinstance(row, Mapping) for row in rows):
        raise AnswerProblem(
            "rows", "'rows' is a list of rows, each a set of 'column: value' lines, e.g. [{balance: 42.17}]."
        )
    count = answer.get("row_count", len(rows))
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise AnswerProblem("row_count", "'row_count' is a whole number, such as 1.")
    rows = [dict(row) for row in rows]
    first = rows[0] if rows else {}
    return {**first, "rows": rows, "row_count": count}


def describe(config: Mapping[str, Any]) -> str:
    """A few words for diagrams."""
    connection = config.get("connection")
    return f"queries {connection}" if isinstance(connection, str) else ""


async def execute(config: Mapping[str, Any], context: NodeContext, services: Services) -> NodeResult:
    # ``params`` arrive with their ${...} filled in; the SQL text never is (it is RAW_TEXT:
    # the runtime leaves it alone, and the schema refuses template syntax in it). Binding
    # happens in engine.runtime.database.
    runtime = activity_services(services, ("database",), NODE_TYPE)
    database = runtime.database(config["connection"])
    result = await database.query(config["query"], dict(config.get("params") or {}))
    first = result.rows[0] if result.rows else {}
    return NodeResult(exit="next", outputs={**first, "rows": result.rows, "row_count": result.row_count})
