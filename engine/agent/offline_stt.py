"""An offline speech-to-text plugin for livekit-agents, on pocketsphinx.

It is not a streaming recogniser: it recognises one buffered utterance at a
time (``_recognize_impl``), and an AgentSession with a VAD wraps it in
``stt.StreamAdapter`` on its own, so VAD cuts the caller's speech into
utterances and each one becomes a final transcript.

The flow tells it what to expect: before a listen or menu node, call
``set_expected_phrases([...])`` with the node's phrases and the recogniser
decodes against them as a grammar (accurate); with none it falls back to the
general language model (weak). See engine.agent.sphinx for how the
confidence is computed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import numpy as np
from livekit import rtc
from livekit.agents import stt, utils
from livekit.agents.language import LanguageCode
from livekit.agents.types import NOT_GIVEN, APIConnectOptions, NotGivenOr

from engine.agent import sphinx
from engine.core.errors import VoxflowError

LANGUAGE = "en-US"


def _is_english(language: str) -> bool:
    return language.lower().replace("_", "-").split("-")[0] == "en"


class OfflineSTT(stt.STT):
    """pocketsphinx as a livekit-agents STT (US English only)."""

    def __init__(self, *, expected_phrases: Iterable[str] = (), language: str = LANGUAGE) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        if not _is_english(language):
            raise VoxflowError(
                f"the offline speech recogniser only understands US English, not {language!r}; "
                "set VOXFLOW_STT=deepgram or VOXFLOW_STT=openai for other languages"
            )
        self._phrases: tuple[str, ...] = tuple(expected_phrases)

    @property
    def model(self) -> str:
        return "pocketsphinx-en-us"

    @property
    def provider(self) -> str:
        return "voxflow-offline"

    @property
    def expected_phrases(self) -> tuple[str, ...]:
        return self._phrases

    def set_expected_phrases(self, phrases: Iterable[str]) -> None:
        """Decode the next utterances against ``phrases`` (empty: free-form).

        Call it when a listen or menu node starts; it applies to utterances
        recognised from then on.
        """
        self._phrases = tuple(phrases)

    def prewarm(self) -> None:
        """Load the models now (blocking, well under a second here) rather than on
        the first answer."""
        sphinx.prewarm_process()

    async def _recognize_impl(
        self,
        buffer: utils.AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        pcm = to_pcm16k(buffer)
        phrases = self._phrases
        result = await sphinx.recognize_elsewhere(pcm, phrases)
        data = stt.SpeechData(
            language=LanguageCode(LANGUAGE),
            text=result.transcript,
            confidence=result.confidence,
            metadata={
                "phrase": result.phrase,
                "posterior": result.posterior,
                "margin": result.margin,
            },
        )
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            request_id=uuid.uuid4().hex[:12],
            alternatives=[data],
        )


def to_pcm16k(buffer: utils.AudioBuffer) -> bytes:
    """The buffer as 16 kHz mono 16-bit PCM, which the acoustic model needs."""
    frame = utils.merge_frames(buffer)
    samples = np.frombuffer(frame.data, dtype=np.int16)
    if frame.num_channels > 1:
        samples = samples.reshape(-1, frame.num_channels).mean(axis=1).astype(np.int16)
    if frame.sample_rate == sphinx.SAMPLE_RATE:
        return samples.tobytes()
    mono = rtc.AudioFrame(samples.tobytes(), frame.sample_rate, 1, len(samples))
    resampler = rtc.AudioResampler(
        frame.sample_rate,
        sphinx.SAMPLE_RATE,
        num_channels=1,
        quality=rtc.AudioResamplerQuality.HIGH,
    )
    out = resampler.push(mono) + resampler.flush()
    return b"".join(bytes(f.data) for f in out)
