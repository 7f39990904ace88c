"""A menu's or listen's end_silence_ms, its own or the flow's, is what it listens with."""

from __future__ import annotations

import textwrap

from engine.language.compile import compile_flow
from engine.language.load import load_text
from engine.language.registry import default_registry

FLOW = textwrap.dedent("""\
    flow: silences
    start: menu
    settings:
      end_silence_ms: 500
    nodes:
      menu:
        type: voice_menu
        prompt: "Say balance."
        options:
          - {phrases: [balance], next: ask}
      ask:
        type: voice_listen
        prompt: "Tell me more."
        end_silence_ms: 1200
        next: done
      done:
        type: end
    """)


def test_the_flow_setting_and_the_node_own_value_reach_the_node() -> None:
    graph = compile_flow(load_text(FLOW, "silences.yaml"), default_registry())
    nodes = graph.nodes
    assert nodes["menu"].config["end_silence_ms"] == 500
    assert nodes["ask"].config["end_silence_ms"] == 1200
