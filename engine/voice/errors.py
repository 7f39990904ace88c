"""What can go wrong on the voice side, in words for the person reading the call record.

:class:`~engine.core.errors.VoxflowError` is kept for problems a person fixes in
configuration (no voice bus, Redis unreachable at start-up, a transfer
destination that is not a phone number): the runtime does not retry those.
Failures during a call (the agent reports an error, stops answering, or the
bus connection drops for good) are :class:`VoiceError`: the node fails, is
retried as the flow allows, then takes ``on_error``.
"""

from __future__ import annotations


class VoiceError(Exception):
    """The voice side failed during a call; the message says what, plainly."""


class AgentError(VoiceError):
    """The agent answered a request with an ``error:*`` event."""

    def __init__(self, message: str, code: str = "agent") -> None:
        super().__init__(message)
        self.code = code


class AgentTimeout(VoiceError):
    """The agent did not answer a request in time (or left and did not come back)."""


class BusUnavailable(VoiceError):
    """The bus could not be reached, even after reconnecting."""


class CallEnded(Exception):
    """The call ended while a node was running: the caller hung up, or was silent too long.

    Not an error: voice plugins turn it into a result that ends the call with
    ``status`` (a runtime call status such as ``user_hangup``) and ``reason``.
    """

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# How a call ended, as the runtime records it (engine.runtime.messages uses the same words).
COMPLETED = "completed"
USER_HANGUP = "user_hangup"
TRANSFERRED = "transferred"
