"""render_config: a node's config filled in before its plugin runs.

Fixed text (no ``${``) is rendered once per text and reused; what comes out
must be exactly what rendering it each time gives.
"""

from __future__ import annotations

import pytest

from engine.language.templates import MAX_TEMPLATE_LENGTH, TemplateProblem, render_value
from engine.runtime.activities import ENGINE_FIELDS, render_config

VARIABLES = {"name": "Ann", "n": 7, "row": {"balance": 42.5}}


@pytest.mark.parametrize(
    "text",
    [
        "bench",
        "SELECT 1 AS one, :n AS n",
        "line one\r\nline two\rthree\n",  # Jinja normalises newlines; so must we
        "trailing newline\n",
        "{{ name }} and {% if %} are plain text here",
        "costs $5",
        "",
    ],
)
def test_fixed_text_comes_out_as_rendering_it_gives(text: str) -> None:
    assert render_config({"message": text}, VARIABLES) == {"message": render_value(text, VARIABLES)}
    assert render_config({"message": text}, {}) == {"message": render_value(text, {})}


def test_templates_are_still_filled_in_every_time() -> None:
    config = {
        "message": "Hi ${name}",
        "amount": "${n}",
        "params": {"b": "${row.balance}"},
        "escaped": "$${n}",
        "items": ["${name}", "x"],
    }
    assert render_config(config, VARIABLES) == {
        "message": "Hi Ann",
        "amount": 7,
        "params": {"b": 42.5},
        "escaped": "$7",
        "items": ["Ann", "x"],
    }
    assert render_config(config, {**VARIABLES, "name": "Bo"})["message"] == "Hi Bo"


def test_jinja_block_syntax_behind_a_nul_is_refused_not_run() -> None:
    """The NUL that hides Jinja's block syntax cannot be used to reach it (a SQL 'disguise')."""
    from engine.language.templates import TemplateProblem

    for variables in (VARIABLES, {}):
        with pytest.raises(TemplateProblem, match="NUL"):
            render_config({"message": "\x00{% if n %}\x00yes\x00{% endif %}\x00 blocks"}, variables)


def test_engine_fields_are_left_alone() -> None:
    config = {field: "${not_rendered}" for field in ENGINE_FIELDS}
    assert render_config(config, VARIABLES) == config


def test_over_long_fixed_text_is_refused_every_time() -> None:
    text = "x" * (MAX_TEMPLATE_LENGTH + 1)
    for _ in range(2):
        with pytest.raises(TemplateProblem, match="longer than"):
            render_config({"message": text}, VARIABLES)
