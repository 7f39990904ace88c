"""The voice agents of ``voxflow dev``: one per call, in this process, no LiveKit needed.

In production LiveKit dispatches an agent to each call's room. On one machine
with no phone, ``voxflow dev`` does that itself: every call its server takes (a
webhook played with curl, a browser caller, ``voxflow chat --server``) gets a
:class:`~engine.agent.bus_agent.BusAgent` on the audio harness, the real
AgentSession with Silero VAD and the chosen speech engines (offline unless
``VOXFLOW_STT`` / ``VOXFLOW_TTS`` say otherwise). The bus, the workflow and
the records are the ones a phone call uses; only the caller's leg differs:

- a call nobody is on the line for (curl): the caller is silence, so the
  flow's no-input handling runs and the call ends as the flow says;
- a browser or terminal caller: a :class:`CallerLeg` whose audio (or typed
  words, or keys) goes into the call, and which hears what the agent says.

When a call ends its audio, both sides mixed, is kept as the call's recording.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.agent import engines, prompt_cache, turn_model_file, wav
from engine.agent.audio_chat import mix
from engine.agent.bus_agent import BusAgent
from engine.agent.control import CallControlError, LocalCallControl
from engine.agent.harness import AudioHarness, HarnessOptions
from engine.agent.session import TurnOptions
from engine.agent.turns import EndOfTurn, TurnModel
from engine.language.upcoming import graph_prompts
from engine.voice.bus import VoiceBus

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000  # what the agent hears and says, as on a phone line through LiveKit
FRAME_BYTES = SAMPLE_RATE * 20 // 1000 * 2  # one 20 ms frame of 16-bit audio
MAX_QUEUED_SECONDS = 0.3  # caller audio further behind than this is dropped, not heard late

CallLanguage = Callable[[str], Awaitable[tuple[str | None, str | None]]]  # -> (language, voice)
RecordingSaved = Callable[[str, Path], Awaitable[None]]  # (call id, WAV file)


@dataclass
class CallerLeg:
    """The caller's end of a call: what it hears and how it learns the call is over.

    ``hear`` gets the agent's audio as 16 kHz 16-bit mono PCM, piece by piece,
    when a phone would play it. ``ended`` is told why the agent's side ended
    ("hangup", "transfer", "caller_left", or "stopped").
    """

    hear: Callable[[bytes], None] | None = None
    ended: Callable[[str], None] | None = None


class DevCallControl(LocalCallControl):
    """Transfers and hang-ups of a dev call: there is no phone network to do them,
    so they succeed, and the caller's leg is told (a browser shows it)."""

    def __init__(self, notify: Callable[[str], None]) -> None:
        super().__init__()
        self._notify = notify

    async def transfer(self, destination: str) -> None:
        await super().transfer(destination)  # checks the destination like LiveKit would
        self._notify(f"transferred to {destination}")

    async def hangup(self, reason: str) -> None:
        await super().hangup(reason)
        self._notify("hung up")


class DevCall:
    """One call's agent and the caller's line into it."""

    def __init__(self, call_id: str, harness: AudioHarness, agent: BusAgent, leg: CallerLeg) -> None:
        self.call_id = call_id
        self.harness = harness
        self.agent = agent
        self.leg = leg
        self.task: asyncio.Task[str | None] | None = None
        self._partial = bytearray()

    def send_audio(self, pcm: bytes) -> None:
        """The caller's audio (16 kHz 16-bit mono), in whole frames onto the line.

        Whole frames, because the line pads what it is given to a frame boundary;
        and never far behind: audio that arrives while more than
        MAX_QUEUED_SECONDS are still queued (a stalled tab catching up) is dropped,
        so the caller is never heard later than they spoke.
        """
        self._partial.extend(pcm)
        whole = len(self._partial) - len(self._partial) % FRAME_BYTES
        if not whole:
            return
        chunk = bytes(self._partial[:whole])
        del self._partial[:whole]
        line = self.harness.line
        if line.busy_until - self.harness.timeline.now() > MAX_QUEUED_SECONDS:
            return
        line.play(chunk)

    def dtmf(self, digit: str) -> None:
        self.agent.dtmf(digit)

    def typed(self, text: str) -> None:
        self.agent.typed(text)

    def caller_left(self, reason: str) -> None:
        self.agent.caller_left(reason)

    def audio(self) -> Any:
        """Both sides of the call so far, mixed (int16 samples at 16 kHz)."""
        return mix(self.harness.agent_audio(), self.harness.caller_audio())


class DevAgents:
    """Starts an agent for every call of ``voxflow dev`` and ends it with the call."""

    def __init__(
        self,
        bus: VoiceBus,
        *,
        recordings_dir: Path | None = None,
        call_language: CallLanguage | None = None,
        recording_saved: RecordingSaved | None = None,
        cache: prompt_cache.PromptCache | None = None,
    ) -> None:
        self.bus = bus
        self.recordings_dir = recordings_dir
        self.choice = engines.choose()
        # The learned end-of-turn model for free speech, when it has been fetched (or
        # as VOXFLOW_TURN_MODEL says); loaded by prewarm().
        self.turn_model_path = turn_model_file.model_path(default="auto")
        self.turn_model: TurnModel | None = None
        self.prompt_cache = cache if cache is not None else prompt_cache.shared_cache()
        self._call_language = call_language
        self._recording_saved = recording_saved
        self.calls: dict[str, DevCall] = {}
        self._starting: dict[str, asyncio.Task[DevCall]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def describe(self) -> str:
        """The engines in words, for the terminal."""
        turns = turn_model_file.describe(self.turn_model)
        return f"speech recognition {self.choice.stt}, speech synthesis {self.choice.tts}; {turns}"

    async def prewarm(self) -> None:
        """Load Silero and the offline recogniser now, not while the first caller waits."""
        from engine.agent import sphinx
        from engine.agent import vad as vad_models

        await asyncio.to_thread(vad_models.prewarm)
        if self.turn_model_path is not None:
            from engine.agent import smart_turn

            self.turn_model = await asyncio.to_thread(smart_turn.load, self.turn_model_path)
        if self.choice.stt == "offline":
            await asyncio.to_thread(sphinx.prewarm_process)

    async def prepare_prompts(self, graphs: Any) -> int:
        """Synthesise every fixed prompt of these flow versions into the prompt cache, as
        each flow's calls will speak them (its language and voice); returns how many
        were made (those already cached are skipped)."""
        made = 0
        for graph in graphs:
            settings = getattr(graph, "settings", {}) or {}
            language = str(settings.get("language") or "en-US")
            voice = settings.get("voice")
            try:
                speech_out = engines.make_tts(
                    self.choice.tts, language=language, voice=engines.engine_voice(self.choice.tts, voice)
                )
            except Exception as error:  # noqa: BLE001 - a flow this engine cannot speak
                log.info("prompts of %s not prepared: %s", getattr(graph, "flow_id", "?"), error)
                continue
            if voice and hasattr(speech_out, "update_options") and self.choice.tts == "offline":
                speech_out.update_options(voice=voice)  # as the bus agent does for its calls
            made += await self.prompt_cache.prepare(graph_prompts(graph), speech_out)
        return made

    # ---- calls ------------------------------------------------------------------

    def call_started(self, call_id: str) -> None:
        """A call rang (``call:incoming``): give it an agent unless a caller leg brings one."""
        if self._closed or call_id in self.calls or call_id in self._starting:
            return
        self._spawn(self.serve(call_id))

    def call_ended(self, call_id: str) -> None:
        """The call's workflow ended: an agent still on it has nothing left to do."""
        call = self.calls.get(call_id)
        if call is not None and call.task is not None and not call.task.done():
            self._spawn(call.agent.abandon())

    async def serve(self, call_id: str, leg: CallerLeg | None = None) -> DevCall:
        """Start the agent of ``call_id``, with ``leg`` as the caller (silence if None)."""
        running = self._starting.get(call_id)
        if running is not None:
            return await running
        if call_id in self.calls:
            return self.calls[call_id]
        starting = asyncio.ensure_future(self._start(call_id, leg or CallerLeg()))
        self._starting[call_id] = starting
        try:
            return await starting
        finally:
            self._starting.pop(call_id, None)

    async def _start(self, call_id: str, leg: CallerLeg) -> DevCall:
        language, voice = (None, None)
        if self._call_language is not None:
            with contextlib.suppress(Exception):
                language, voice = await self._call_language(call_id)
        language = language or "en-US"
        speech_in = engines.make_stt(self.choice.stt, language=language)
        speech_out = engines.make_tts(
            self.choice.tts, language=language, voice=engines.engine_voice(self.choice.tts, voice)
        )
        harness = AudioHarness(
            stt_engine=speech_in,
            tts_engine=speech_out,
            on_agent_audio=leg.hear,
            prompt_cache=self.prompt_cache,
            options=HarnessOptions(turns=TurnOptions(end_of_turn=EndOfTurn(model=self.turn_model))),
        )
        await harness.start()
        control = DevCallControl(lambda what: log.info("call %s: the agent %s", call_id, what))
        agent = BusAgent(
            self.bus, call_id, harness.voice, control, agent_id=f"dev-agent-{uuid.uuid4().hex[:6]}"
        )
        call = DevCall(call_id, harness, agent, leg)
        self.calls[call_id] = call
        call.task = agent.start()
        self._spawn(self._finish_when_done(call))
        return call

    async def _finish_when_done(self, call: DevCall) -> None:
        assert call.task is not None
        ended: str | None = None
        try:
            ended = await call.task
        except asyncio.CancelledError:
            ended = "stopped"
        except Exception:  # noqa: BLE001 - one call's failure must not stop the others
            log.exception("the agent of call %s failed", call.call_id)
            ended = "failed"
        finally:
            await self._close(call, ended or "stopped")

    async def _close(self, call: DevCall, ended: str) -> None:
        audio = call.audio()
        with contextlib.suppress(Exception):
            await call.harness.aclose()
        self.calls.pop(call.call_id, None)
        if call.leg.ended is not None:
            call.leg.ended(ended)
        if self.recordings_dir is not None and len(audio):
            path = self.recordings_dir / f"{call.call_id}.wav"
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                await asyncio.to_thread(wav.write, path, audio, SAMPLE_RATE)
                if self._recording_saved is not None:
                    await self._recording_saved(call.call_id, path)
            except Exception as error:  # noqa: BLE001 - a lost recording is not a lost call
                log.warning("the recording of call %s was not saved: %s", call.call_id, error)

    async def aclose(self) -> None:
        """Every agent leaves its call (as a stopping ``voxflow agent`` does)."""
        self._closed = True
        for call in list(self.calls.values()):
            with contextlib.suppress(Exception, CallControlError):
                await call.agent.leave("voxflow dev is stopping")
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a dev agent task failed: %s", task.exception())
