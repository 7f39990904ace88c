"""Prompts ready before they are needed: while the caller has the turn, what the call may
say next is synthesised into the prompt cache (engine.agent.next_prompts).

The real path: a Temporal workflow walks the flow, the run_node activity fills in what
may come next with the call's variables, the voice channel puts it on the question, the
bus agent on the audio harness (real AgentSession, Silero VAD, pocketsphinx, espeak-ng)
prepares it while the caller answers. The caller is espeak speech on the line.
"""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

from livekit.agents import tts as agents_tts
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from prometheus_client import CollectorRegistry, generate_latest

from engine.agent import prompt_cache as pc
from engine.agent.bus_agent import BusAgent, BusAgentOptions
from engine.agent.control import LocalCallControl
from engine.agent.harness import AudioHarness
from engine.agent.next_prompts import prepare_next_from_env
from engine.agent.offline_tts import OfflineTTS
from engine.language.compile import FlowGraph, compile_flow
from engine.language.load import load_text
from engine.language.registry import default_registry
from engine.language.upcoming import upcoming_texts
from engine.runtime.calls import start_call
from engine.runtime.temporal_server import connect_client
from engine.voice.memory_bus import MemoryVoiceBus
from engine.voice.messages import Listen, Speak, SpeechComplete, Stop, TtsComplete, TtsStarted
from tests.agent.conftest import BALANCE, CALLER, VoiceEngine, new_call_id
from tests.agent.speech import speech
from tests.agent.support import BusLog

FLOW = textwrap.dedent("""\
    flow: prepare-next
    start: lookup
    nodes:
      lookup:
        type: database_query
        connection: accounts
        query: "SELECT balance FROM accounts WHERE phone = :phone"
        params: {phone: "${caller_number}"}
        save_as: account
        next: menu
      menu:
        type: voice_menu
        prompt: "Say balance, or agent."
        options:
          - {phrases: [balance], next: tell}
          - {phrases: [agent], next: transfer}
      tell:
        type: voice_speak
        message: "Your balance is $${account.balance}."
        next: more
      more:
        type: voice_listen
        prompt: "Anything else?"
        expected_phrases: ["yes", "no"]
        save_as: more
        next: bye
      bye:
        type: voice_hangup
        farewell_message: "Thank you for calling. Goodbye."
      transfer:
        type: voice_transfer
        announce_message: "Connecting you to ${more.transcript}."
        destination: "+15550199"
    """)
TOLD = f"Your balance is ${BALANCE}."


def _graph() -> FlowGraph:
    return compile_flow(load_text(FLOW, "prepare-next.yaml"), default_registry())


def test_what_may_come_next_is_read_from_the_graph() -> None:
    graph = _graph()
    assert graph.nodes["menu"].talks_to_caller and not graph.nodes["lookup"].talks_to_caller
    assert graph.nodes["menu"].waits and not graph.nodes["tell"].waits  # a question, a message
    assert graph.nodes["bye"].says == ("Thank you for calling. Goodbye.",)
    # The menu's options, to the first nodes that talk (templates as written).
    assert upcoming_texts(graph, "menu") == [
        "Your balance is $${account.balance}.",
        "Connecting you to ${more.transcript}.",
        "Say balance, or agent.",
    ]
    assert upcoming_texts(graph, "more") == ["Thank you for calling. Goodbye.", "Anything else?"]
    # Through nodes that do not talk to the caller (the lookup), bounded in texts.
    assert upcoming_texts(graph, "lookup", limit=1) == ["Say balance, or agent."]
    # A version is what the call does: what it may say is derived, not part of it.
    assert graph.version == _graph().version


def test_the_next_prompt_and_a_templated_one_are_cache_hits_when_said(
    voice_engine: VoiceEngine, tmp_path: Path
) -> None:
    graph = _graph()
    call_id = new_call_id("next")

    async def scenario() -> None:
        client = await connect_client(voice_engine.settings)
        cache = pc.PromptCache(pc.DiskStore(tmp_path / "cache", 50_000_000))
        async with (
            AudioHarness(prompt_cache=cache) as call,
            BusLog(voice_engine.bus, call_id, call.timeline) as log,
        ):
            agent = BusAgent(
                voice_engine.bus,
                call_id,
                call.voice,
                LocalCallControl(),
                options=BusAgentOptions(prepare_next=True),
            )
            serving = agent.start()
            await start_call(
                client, graph, call_id, call={"caller_number": CALLER}, task_queue=voice_engine.task_queue
            )

            # The menu's question carries what may come next, filled in with the balance the
            # lookup saved; a text reading a variable the call has not got yet is left out.
            menu = await log.speak("Say balance")
            asked = log.of(Listen)[-1]
            assert asked.upcoming == (TOLD, "Say balance, or agent."), asked.upcoming
            await log.wait_for(TtsComplete, lambda e: e.request_id == menu.request_id)
            call.play_caller(speech("balance"))
            heard = await log.wait_for(SpeechComplete, lambda e: e.request_id == asked.request_id)
            assert heard.message.transcript == "balance"

            # The templated reply was prepared while the caller spoke: said from the cache.
            told = await log.speak("Your balance", after=heard.at)
            assert told.text == TOLD
            started = await log.wait_for(TtsStarted, lambda e: e.request_id == told.request_id)
            assert started.message.cached is True

            # The next node's prompt (never said before, not prepared when the flow loaded).
            more = await log.speak("Anything else", after=started.at)
            more_started = await log.wait_for(TtsStarted, lambda e: e.request_id == more.request_id)
            assert more_started.message.cached is False
            await log.wait_for(TtsComplete, lambda e: e.request_id == more.request_id)
            call.play_caller(speech("no"))
            bye = await log.speak("Thank you", after=more_started.at)
            bye_started = await log.wait_for(TtsStarted, lambda e: e.request_id == bye.request_id)
            assert bye_started.message.cached is True
            assert await serving == "hangup"  # the call ends with the farewell

        assert cache.stats.hits == 2 and cache.stats.misses == 2, cache.stats
        assert cache.stats.prepared_next >= 2
        # /metrics (voxflow dev registers this collector on its registry).
        registry = CollectorRegistry()
        registry.register(pc.PromptCacheCollector(cache))
        metrics = generate_latest(registry).decode()
        assert "voxflow_prompt_cache_hits_total 2.0" in metrics
        assert "voxflow_prompt_cache_prepared_next_total" in metrics

    asyncio.run(scenario())


# ---- never before speech the caller waits for ----------------------------------------

HELD = "A long text that takes the speech engine and keeps it."


class OneLineTTS(OfflineTTS):
    """espeak-ng with one line to it, as espeak-ng itself has (one synthesis at a time):
    synthesising ``HELD`` takes the line and keeps it until it is cancelled. A reply that
    had to wait for it would never be heard."""

    def __init__(self) -> None:
        super().__init__()
        self.line = asyncio.Lock()
        self.held = 0  # times HELD took the line
        self.cancelled = 0  # times it was cancelled

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> agents_tts.ChunkedStream:
        return _OneLineStream(self, super().synthesize(text, conn_options=conn_options), text, conn_options)


class _OneLineStream(agents_tts.ChunkedStream):
    def __init__(
        self, engine: OneLineTTS, inner: agents_tts.ChunkedStream, text: str, conn_options: APIConnectOptions
    ) -> None:
        super().__init__(tts=engine, input_text=text, conn_options=conn_options)
        self._engine, self._inner = engine, inner

    async def _run(self, output_emitter: agents_tts.AudioEmitter) -> None:
        engine = self._engine
        async with engine.line:
            if self.input_text == HELD:
                engine.held += 1
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    engine.cancelled += 1
                    raise
            output_emitter.initialize(
                request_id="one-line", sample_rate=engine.sample_rate, num_channels=1, mime_type="audio/pcm"
            )
            async with self._inner as stream:
                async for audio in stream:
                    output_emitter.push(bytes(audio.frame.data))
            output_emitter.flush()


async def _until(condition: object, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_preparing_yields_to_a_prompt_and_is_skipped_when_the_turn_ends(tmp_path: Path) -> None:
    call_id = new_call_id("held")

    async def scenario() -> None:
        bus = MemoryVoiceBus()
        engine = OneLineTTS()
        cache = pc.PromptCache(pc.DiskStore(tmp_path / "cache", 50_000_000))
        async with (
            AudioHarness(tts_engine=engine, prompt_cache=cache) as call,
            BusLog(bus, call_id, call.timeline) as log,
        ):
            agent = BusAgent(
                bus, call_id, call.voice, LocalCallControl(), options=BusAgentOptions(prepare_next=True)
            )
            agent.start()
            await agent.joined.wait()
            # A question with no prompt: preparing starts once the agent is quiet.
            await bus.send_command(call_id, Listen(request_id="q1", upcoming=(HELD, "Then this.")))
            await _until(lambda: engine.held == 1)

            # The flow has something to say meanwhile: it is heard, not held up.
            await bus.send_command(call_id, Speak(request_id="s1", text="One moment."))
            await log.wait_for(TtsStarted, lambda e: e.request_id == "s1")
            assert engine.cancelled == 1
            await log.wait_for(TtsComplete, lambda e: e.request_id == "s1")
            await _until(lambda: engine.held == 2)  # taken up again after the prompt

            # The caller answers: the turn is over, what was not prepared is skipped,
            # and the reply is heard.
            agent.typed("yes")
            await log.wait_for(SpeechComplete, lambda e: e.request_id == "q1")
            await _until(lambda: engine.cancelled == 2)
            await bus.send_command(call_id, Speak(request_id="s2", text="Noted."))
            started = await log.wait_for(TtsStarted, lambda e: e.request_id == "s2")
            assert started.message.cached is False
            await log.wait_for(TtsComplete, lambda e: e.request_id == "s2")
            assert cache.stats.skipped_next == 2 and cache.stats.prepared_next == 0
            assert await cache.lookup("Then this.", engine) is None

            # A question stopped before the caller says anything: skipped as well.
            await bus.send_command(call_id, Listen(request_id="q2", upcoming=(HELD,)))
            await _until(lambda: engine.held == 3)
            await bus.send_command(call_id, Stop(request_id="x", target="q2"))
            await _until(lambda: engine.cancelled == 3)
            assert cache.stats.skipped_next == 3
            await agent.leave()

    asyncio.run(scenario())


def test_the_flows_fixed_texts_are_prepared_while_the_agent_is_quiet(tmp_path: Path) -> None:
    """``voxflow agent`` is given the flow version's fixed texts with the call's context:
    prepared in the quiet moments (a prompt pauses them, as it pauses a turn's), across
    turns, so the next call of that version finds them cached."""
    call_id = new_call_id("flow-texts")

    async def scenario() -> None:
        bus = MemoryVoiceBus()
        engine = OneLineTTS()
        cache = pc.PromptCache(pc.DiskStore(tmp_path / "cache", 50_000_000))
        async with (
            AudioHarness(tts_engine=engine, prompt_cache=cache) as call,
            BusLog(bus, call_id, call.timeline) as log,
        ):
            options = BusAgentOptions(prepare_next=True, flow_prompts=(HELD, "Goodbye for now."))
            agent = BusAgent(bus, call_id, call.voice, LocalCallControl(), options=options)
            agent.start()
            await agent.joined.wait()
            await _until(lambda: engine.held == 1)
            # A prompt meanwhile is heard, not held up; the flow's texts go on after it.
            await bus.send_command(call_id, Speak(request_id="s1", text="Welcome."))
            await log.wait_for(TtsComplete, lambda e: e.request_id == "s1")
            assert engine.cancelled == 1
            await _until(lambda: engine.held == 2)
            # A turn ending does not skip them (they are not the turn's).
            await bus.send_command(call_id, Listen(request_id="q1"))
            agent.typed("yes")
            await log.wait_for(SpeechComplete, lambda e: e.request_id == "q1")
            assert cache.stats.skipped_next == 0
            await agent.leave()

        # On an engine that holds nothing up, a flow text is cached, then said from the cache.
        prepared_before = cache.stats.prepared
        bus = MemoryVoiceBus()
        other = new_call_id("flow-texts-2")
        async with (
            AudioHarness(prompt_cache=cache) as call,
            BusLog(bus, other, call.timeline) as log,
        ):
            options = BusAgentOptions(prepare_next=True, flow_prompts=("Until next time.",))
            agent = BusAgent(bus, other, call.voice, LocalCallControl(), options=options)
            agent.start()
            await agent.joined.wait()
            await _until(lambda: cache.stats.prepared == prepared_before + 1)
            await bus.send_command(other, Speak(request_id="s2", text="Until next time."))
            started = await log.wait_for(TtsStarted, lambda e: e.request_id == "s2")
            assert started.message.cached is True
            await agent.leave()

    asyncio.run(scenario())


def test_the_switch() -> None:
    assert prepare_next_from_env({}) is True
    assert prepare_next_from_env({"VOXFLOW_PREPARE_NEXT": "on"}) is True
    for off in ("off", "0", "false", "No"):
        assert prepare_next_from_env({"VOXFLOW_PREPARE_NEXT": off}) is False
