"""Counted no_input / no_match handlers."""

from __future__ import annotations

from engine.voice.handlers import NO_MATCH_REPROMPT, HandlerCounter, Step

CONFIG = {
    "no_input": [{"reprompt": "Hello?"}, {"say": "Still nothing."}, {"say": "Bye.", "next": "x"}],
    "no_match": [{"reprompt": "Pardon?"}],
}


def test_handlers_are_used_in_order_with_separate_counts() -> None:
    counter = HandlerCounter(CONFIG)
    assert counter.step("no_input", "Menu.") == Step(prompt="Hello?")
    assert counter.step("no_match", "Menu.") == Step(prompt="Pardon?")
    # a handler with only `say` says it before the prompt
    assert counter.step("no_input", "Menu.") == Step(prompt="Still nothing. Menu.")
    assert counter.step("no_input", "Menu.") == Step(say="Bye.", exit="no_input[2].next")


def test_the_last_handler_repeats() -> None:
    counter = HandlerCounter(CONFIG)
    steps = [counter.step("no_match", "Menu.") for _ in range(3)]
    assert steps == [Step(prompt="Pardon?")] * 3
    counter = HandlerCounter(CONFIG)
    exits = [counter.step("no_input", "Q").exit for _ in range(5)]
    assert exits == [None, None, "no_input[2].next", "no_input[2].next", "no_input[2].next"]


def test_without_handlers_the_node_asks_again_with_a_default() -> None:
    counter = HandlerCounter({})
    # The default no_match replays the prompt after its apology, as VoiceXML's does.
    assert counter.step("no_match", "Q?") == Step(prompt=f"{NO_MATCH_REPROMPT} Q?")
    assert counter.step("no_input", "Q?") == Step(prompt="Sorry, I didn't hear anything. Q?")


def test_a_handler_with_only_next_goes_there_silently() -> None:
    counter = HandlerCounter({"no_match": [{"next": "agent"}]})
    assert counter.step("no_match", "Q?") == Step(exit="no_match[0].next")


def test_counts_start_again_at_each_visit_and_the_docs_say_how_that_differs_from_voicexml() -> None:
    # One HandlerCounter per node execution: a second visit starts at the first handler.
    config = {"no_match": [{"reprompt": "First?"}, {"reprompt": "Second?"}]}
    first_visit = HandlerCounter(config)
    assert first_visit.step("no_match", "Q?") == Step(prompt="First?")
    assert first_visit.step("no_match", "Q?") == Step(prompt="Second?")
    assert HandlerCounter(config).step("no_match", "Q?") == Step(prompt="First?")
    from pathlib import Path

    reference = (Path(__file__).resolve().parents[2] / "docs" / "nodes.md").read_text()
    assert "Counts start again at every visit to a node" in reference
    assert "VoiceXML 2.0 (§5.2.2, §5.2.5)" in reference
