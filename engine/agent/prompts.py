"""The agent's mouth: ``speak`` and ``play`` commands become ``session.say`` calls.

Each prompt is one SpeechHandle. Its bus events follow the contract in
engine.voice.messages: ``tts:started`` when its first frame is heard (the
session's agent state turns to "speaking" with it as the current speech;
``cached`` when its audio came from the prompt cache),
then ``tts:complete``, or ``tts:interrupted`` with who cut it:

- ``speech``: the session cut it itself (VAD heard the caller for the
  interruption's min_duration over an interruptible prompt);
- ``dtmf``: a key, through :meth:`PromptPlayer.cut_by_key`;
- ``stop``: a stop command, through :meth:`PromptPlayer.stop` (forced, so even
  a prompt that may not be interrupted stops).

A prompt the speech synthesiser failed on ends with ``error:tts`` instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from livekit.agents import tts as agents_tts
from livekit.agents.voice import SpeechHandle

from engine.agent import clips
from engine.agent.offline_tts import OfflineTTS
from engine.agent.session import CallVoice
from engine.core.errors import VoxflowError
from engine.voice.messages import (
    ErrorEvent,
    Event,
    Play,
    Speak,
    TtsComplete,
    TtsInterrupted,
    TtsStarted,
)

Publish = Callable[[Event], None]
CLIP_RATE = 16000  # play clips are decoded at this rate; the session resamples to its output
log = logging.getLogger(__name__)


@dataclass
class Prompt:
    request_id: str
    handle: SpeechHandle
    interruptible: bool
    started: bool = False
    cut_by: str = ""  # "dtmf" or "stop" when the agent cut it; the session's own cuts are speech
    digit: str = ""
    error: str = ""
    to_cache: str = ""  # text to synthesise into the prompt cache once it has played
    cached: bool = False  # its audio came from the prompt cache


class PromptPlayer:
    def __init__(self, voice: CallVoice, publish: Publish) -> None:
        self._voice = voice
        self._publish = publish
        self._prompts: dict[str, Prompt] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._voice_name: str | None = None
        self._starting = 0  # speak/play commands still looking up or loading their audio
        voice.session.on("agent_state_changed", self._on_agent_state)
        voice.session.on("error", self._on_error)

    def close(self) -> None:
        self._voice.session.off("agent_state_changed", self._on_agent_state)
        self._voice.session.off("error", self._on_error)
        for task in self._tasks:
            task.cancel()

    # ---- commands ------------------------------------------------------------

    async def speak(self, command: Speak) -> None:
        """Say the text: its cached audio if the prompt cache has it (the first frame is a
        read), else synthesised as it plays and then cached for the next time."""
        self._use_voice(command.voice)
        if not command.text.strip():
            self._publish(TtsStarted(request_id=command.request_id))
            self._publish(TtsComplete(request_id=command.request_id))
            return
        cache = self._voice.prompt_cache
        self._starting += 1
        try:
            cached = await cache.lookup(command.text, self._voice.tts) if cache is not None else None
        finally:
            self._starting -= 1
        if cached is not None:
            audio = clips.frames(cached, self._voice.tts.sample_rate)
            said = self._say(command.request_id, command.text, audio, command.interruptible)
            if said is not None:
                said.cached = True
            return
        prompt = self._say(command.request_id, command.text, None, command.interruptible)
        if prompt is not None and cache is not None:
            prompt.to_cache = command.text

    async def play(self, command: Play) -> None:
        """Load the clip (awaited, so prompts keep the order they were sent in), then play it."""
        self._starting += 1
        try:
            pcm = await clips.load_clip(command.audio, CLIP_RATE)
        except VoxflowError as error:
            self._publish(ErrorEvent(request_id=command.request_id, code="play", message=error.message))
            return
        finally:
            self._starting -= 1
        self._say(command.request_id, "", clips.frames(pcm, CLIP_RATE), command.interruptible)

    async def play_now(self, pcm: bytes) -> None:
        """Play ``pcm`` (16 kHz) to the end, uninterruptible, outside the bus (the record beep)."""
        handle = self._voice.session.say(
            "", audio=clips.frames(pcm, CLIP_RATE), allow_interruptions=False, add_to_chat_ctx=False
        )
        await handle

    def stop(self, target: str) -> bool:
        prompt = self._prompts.get(target)
        if prompt is None or prompt.handle.done():
            return False
        prompt.cut_by = prompt.cut_by or "stop"
        prompt.handle.interrupt(force=True)
        return True

    def cut_by_key(self, digit: str) -> Prompt | None:
        """Stop the prompt being heard if the caller may cut it; it is returned if so."""
        prompt = self.playing()
        if prompt is None or not prompt.interruptible:
            return None
        prompt.cut_by, prompt.digit = "dtmf", digit
        prompt.handle.interrupt()
        return prompt

    def speaking(self) -> bool:
        """Whether a prompt sent to the agent is not over yet (queued or being heard)."""
        return bool(self._prompts) or self._starting > 0

    def playing(self) -> Prompt | None:
        """The prompt the caller hears now (or is about to: its turn has come)."""
        current = self._voice.session.current_speech
        if current is None or current.done():
            return None
        return self._by_handle(current)

    # ---- internals -------------------------------------------------------------

    def _say(self, request_id: str, text: str, audio: Any, interruptible: bool) -> Prompt | None:
        try:
            if audio is None:
                handle = self._voice.session.say(
                    text, allow_interruptions=interruptible, add_to_chat_ctx=False
                )
            else:
                handle = self._voice.session.say(
                    text, audio=audio, allow_interruptions=interruptible, add_to_chat_ctx=False
                )
        except RuntimeError as error:  # the session is closing
            self._publish(
                ErrorEvent(request_id=request_id, code="tts", message=f"the agent cannot speak now: {error}")
            )
            return None
        prompt = Prompt(request_id, handle, interruptible)
        self._prompts[request_id] = prompt
        self._spawn(self._watch(prompt))
        return prompt

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch(self, prompt: Prompt) -> None:
        await prompt.handle
        self._prompts.pop(prompt.request_id, None)
        rid = prompt.request_id
        if prompt.error:
            self._publish(ErrorEvent(request_id=rid, code="tts", message=prompt.error))
            return
        cache = self._voice.prompt_cache
        if prompt.to_cache and cache is not None:
            # After it played, so that this synthesis never delays one the caller waits on.
            self._spawn(cache.prepare([prompt.to_cache], self._voice.tts))
        # A prompt cut before its first frame was heard still gets its start event:
        # the contract is started, then complete or interrupted.
        if not prompt.started:
            self._publish(TtsStarted(request_id=rid, cached=prompt.cached))
        if prompt.handle.interrupted:
            self._publish(TtsInterrupted(request_id=rid, by=prompt.cut_by or "speech", digit=prompt.digit))
        else:
            self._publish(TtsComplete(request_id=rid))

    def _by_handle(self, handle: SpeechHandle) -> Prompt | None:
        for prompt in self._prompts.values():
            if prompt.handle is handle:
                return prompt
        return None

    def _on_agent_state(self, event: Any) -> None:
        if event.new_state != "speaking":
            return
        current = self._voice.session.current_speech
        prompt = self._by_handle(current) if current is not None else None
        if prompt is not None and not prompt.started:
            prompt.started = True
            self._publish(TtsStarted(request_id=prompt.request_id, cached=prompt.cached))

    def _on_error(self, event: Any) -> None:
        # A synthesis failure belongs to the prompt being generated: the current speech.
        if not isinstance(event.source, agents_tts.TTS):
            return
        current = self._voice.session.current_speech
        prompt = self._by_handle(current) if current is not None else None
        if prompt is not None and not getattr(event.error, "recoverable", False):
            prompt.error = f"the speech synthesiser failed: {getattr(event.error, 'error', event.error)}"

    def _use_voice(self, voice: str | None) -> None:
        """A flow's voice reaches the offline engine (which ignores voices it lacks, once);
        cloud engines keep the voice they were configured with."""
        if not voice or voice == self._voice_name:
            return
        self._voice_name = voice
        if isinstance(self._voice.tts, OfflineTTS):
            self._voice.tts.update_options(voice=voice)
