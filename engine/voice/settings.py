"""A voice node's behaviour settings: its own config, else the flow's settings, else defaults.

The compiler fills the flow's ``voice``, ``language``, ``barge_in`` and
``no_input_timeout`` into every voice node's config. The other behaviour
settings are read from the node's config when it has them, then from
``context.call["settings"]`` (the flow's compiled settings, when the runtime
passes them there), then from the defaults below. Lengths of time may be
seconds or duration text ("30s").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.language.duration import parse_duration
from engine.language.node_contract import NodeContext
from engine.voice.channel import ChannelPolicy

DEFAULT_NO_INPUT_TIMEOUT = 5.0
DEFAULT_LOW_CONFIDENCE_THRESHOLD = 0.5
DEFAULT_SILENCE_CHECK_AFTER = 30.0
DEFAULT_SILENCE_HANGUP_AFTER = 10.0


@dataclass(frozen=True)
class VoiceSettings:
    voice: str | None = None
    language: str | None = None
    barge_in: bool = True
    no_input_timeout: float = DEFAULT_NO_INPUT_TIMEOUT
    low_confidence_threshold: float = DEFAULT_LOW_CONFIDENCE_THRESHOLD
    rapid_interruptions: bool = False
    silence_check_after: float = DEFAULT_SILENCE_CHECK_AFTER
    silence_hangup_after: float = DEFAULT_SILENCE_HANGUP_AFTER

    def interruptible(self, config: Mapping[str, Any]) -> bool:
        """A prompt's own ``interruptible``, else the flow's ``barge_in``."""
        value = config.get("interruptible")
        return self.barge_in if value is None else bool(value)

    def policy(self) -> ChannelPolicy:
        return ChannelPolicy(
            silence_check_after=self.silence_check_after,
            silence_hangup_after=self.silence_hangup_after,
        )


def voice_settings(config: Mapping[str, Any], context: NodeContext) -> VoiceSettings:
    flow = context.call.get("settings") if isinstance(context.call, Mapping) else None
    flow = flow if isinstance(flow, Mapping) else {}

    def pick(name: str, default: Any) -> Any:
        if config.get(name) is not None:
            return config[name]
        if flow.get(name) is not None:
            return flow[name]
        return default

    return VoiceSettings(
        voice=pick("voice", None),
        language=pick("language", None),
        barge_in=bool(pick("barge_in", True)),
        no_input_timeout=_seconds(pick("no_input_timeout", DEFAULT_NO_INPUT_TIMEOUT)),
        low_confidence_threshold=float(pick("low_confidence_threshold", DEFAULT_LOW_CONFIDENCE_THRESHOLD)),
        rapid_interruptions=bool(pick("rapid_interruptions", False)),
        silence_check_after=_seconds(pick("silence_check_after", DEFAULT_SILENCE_CHECK_AFTER)),
        silence_hangup_after=_seconds(pick("silence_hangup_after", DEFAULT_SILENCE_HANGUP_AFTER)),
    )


def _seconds(value: Any) -> float:
    return parse_duration(value) if isinstance(value, str) else float(value)
