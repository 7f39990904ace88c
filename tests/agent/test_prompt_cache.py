"""The prompt cache: keys by content, bounded stores (a folder, a real Redis), the bus
agent saying a cached prompt, and ``voxflow dev``'s agents preparing a flow's prompts."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

from engine.agent import prompt_cache as pc
from engine.agent.bus_agent import BusAgent
from engine.agent.control import LocalCallControl
from engine.agent.dev_agents import DevAgents
from engine.agent.harness import AudioHarness
from engine.agent.offline_tts import OfflineTTS
from engine.language.compile import FlowGraph, compile_flow
from engine.language.load import load_text
from engine.language.registry import default_registry
from engine.language.upcoming import graph_prompts
from engine.voice.channel import VoiceChannel
from engine.voice.memory_bus import MemoryVoiceBus
from tests.agent.conftest import new_call_id
from tests.agent.support import BusLog
from tests.waiting import wait_until

PROMPT = "Thank you for calling Acme Bank."


def test_the_key_is_the_content_and_how_it_is_spoken() -> None:
    plain, slow = OfflineTTS(), OfflineTTS(rate=120)
    assert pc.prompt_key(PROMPT, plain) == pc.prompt_key(PROMPT, OfflineTTS())
    assert pc.prompt_key(PROMPT, plain) != pc.prompt_key(PROMPT + " ", plain)
    assert pc.prompt_key(PROMPT, plain) != pc.prompt_key(PROMPT, slow)
    assert pc.prompt_key(PROMPT, plain) != pc.prompt_key(PROMPT, OfflineTTS(voice="en"))
    assert pc.prompt_key(PROMPT, plain) != pc.prompt_key(PROMPT, OfflineTTS(sample_rate=8000))


def test_the_fixed_texts_of_nodes_that_talk_to_the_caller_are_prompts(
    example_flows: dict[str, FlowGraph],
) -> None:
    graph = compile_flow(
        load_text(
            textwrap.dedent("""\
                flow: prompts
                start: hello
                nodes:
                  hello: {type: voice_speak, message: "Hello!", next: named}
                  named: {type: voice_speak, message: "Hello ${name}!", next: menu}
                  menu:
                    type: voice_menu
                    prompt: |
                      Say balance.
                    no_input: [{reprompt: "Sorry?"}]
                    options: [{phrases: [balance], next: fetch}]
                  fetch:
                    type: http_request
                    url: https://example.com/a
                    headers: {X-Note: "not spoken"}
                    next: bye
                  bye: {type: voice_hangup, farewell_message: "Goodbye."}
                """),
            "prompts.yaml",
        ),
        default_registry(),
    )
    # As the node says it (filled in as the run_node activity fills in text with no variable).
    assert graph_prompts(graph) == ["Hello!", "Say balance.\n", "Sorry?", "Goodbye."]
    texts = graph_prompts(example_flows["ivr-menu"])
    assert texts and not [text for text in texts if "${" in text]
    assert "How can I help you today? You can ask for your balance, or for an agent." in texts
    assert not [text for text in texts if text.startswith("Hello")]  # "Hello ${caller_name}!"


def test_the_folder_store_keeps_the_most_recently_used(tmp_path: Path) -> None:
    async def run() -> None:
        store = pc.DiskStore(tmp_path / "cache", max_bytes=2500)
        for key in ("a", "b"):
            await store.put(key, bytes(1000))
            await asyncio.sleep(0.02)  # distinct times of use
        assert await store.get("a") == bytes(1000)  # "a" is now the most recent
        await asyncio.sleep(0.02)  # distinct times of use
        await store.put("c", bytes(1000))
        assert await store.get("b") is None
        assert await store.get("a") is not None and await store.get("c") is not None

    asyncio.run(run())


def test_the_redis_store_is_shared_and_bounded(redis_url: str) -> None:
    async def run() -> None:
        first, second = pc.RedisStore(redis_url, 2500), pc.RedisStore(redis_url, 2500)
        try:
            await first.put("x1", b"\1" * 1000)
            await first.put("x2", b"\2" * 1000)
            assert await second.get("x1") == b"\1" * 1000  # another agent reads it
            await second.put("x3", b"\3" * 1000)
            assert await first.get("x2") is None  # least recently used, over the bound
            assert await first.get("x3") == b"\3" * 1000
        finally:
            for store in (first, second):
                await store.aclose()

    asyncio.run(run())


def test_a_prompt_said_again_comes_from_the_cache(tmp_path: Path) -> None:
    call_id = new_call_id("cache")

    async def run() -> None:
        bus = MemoryVoiceBus()
        cache = pc.PromptCache(pc.DiskStore(tmp_path / "cache", 10_000_000))
        async with AudioHarness(prompt_cache=cache) as call, BusLog(bus, call_id, call.timeline):
            agent = BusAgent(bus, call_id, call.voice, LocalCallControl())
            agent.start()
            async with VoiceChannel(bus, call_id) as channel:
                await channel.speak(PROMPT)
                # Synthesised into the cache after it played.
                await wait_until(lambda: cache.stats.prepared, what="the prompt in the cache")
                await channel.speak(PROMPT)
            first, second = call.speaker.segments[-2:]
            await agent.leave()
        assert (cache.stats.misses, cache.stats.hits, cache.stats.prepared) == (1, 1, 1)
        assert abs(first.played - second.played) < 0.1  # the same audio, from the cache
        # Another agent process on this machine finds it in the folder.
        other = pc.PromptCache(pc.DiskStore(tmp_path / "cache", 10_000_000))
        assert await other.lookup(PROMPT, OfflineTTS()) is not None

    asyncio.run(run())


def test_dev_agents_prepare_every_fixed_prompt_of_a_flow(
    example_flows: dict[str, FlowGraph], tmp_path: Path
) -> None:
    async def run() -> None:
        cache = pc.PromptCache(pc.DiskStore(tmp_path / "cache", 100_000_000))
        agents = DevAgents(MemoryVoiceBus(), cache=cache)
        graph = example_flows["ivr-menu"]
        made = await agents.prepare_prompts([graph])
        assert made == len(graph_prompts(graph))
        assert await agents.prepare_prompts([graph]) == 0  # a version is prepared once
        for text in graph_prompts(graph):
            assert await cache.lookup(text, OfflineTTS()) is not None
        assert cache.stats.hit_rate == 1.0

    asyncio.run(run())
