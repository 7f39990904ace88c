"""Prompts ready before they are needed: while the caller has the turn, what the call
may say next is synthesised into the prompt cache.

A question (``listen``, ``collect_dtmf``, ``record``) may carry ``upcoming``: the
texts the call may say after it, most likely first, already filled in with the
call's variables (engine.language.upcoming finds them in the graph, the run_node
activity fills them in). A templated text is there as soon as the variables it
reads are known: a balance an outside service gave before a menu is in the menu's
``upcoming``, rendered. :class:`NextPrompts` synthesises them one at a time,
through :meth:`PromptCache.prepare <engine.agent.prompt_cache.PromptCache.prepare>`
(texts cached already are skipped), so that when the flow says one of them its
first audio is a cache read:

- only while the agent is quiet: the question's own prompt (sent just after the
  listen, for barge-in) goes first. Preparing starts when that prompt has been said
  (or cut), when the caller starts speaking, or ``QUIET_AFTER_QUESTION`` after a
  question with no prompt;
- a prompt to say (``speak``, ``play``) pauses it at once: the synthesis in
  progress is cancelled before the prompt is looked up, and taken up again after it;
- the turn ending (the answer heard, a key, the question stopped or replaced, the
  call ending) ends it: what is left is skipped, never synthesised later.

The same quiet moments serve a second, standing list (:meth:`NextPrompts.prepare_flow`):
every fixed text of the call's flow version, which ``voxflow agent`` is given with the
call's context, so that a version's prompts are synthesised once, by the first call
that runs it, for every agent sharing the cache. A turn's texts go first; the standing
list is not skipped when a turn ends, only paused.

Nothing prepared is ever said: it is only a cache entry, used if and when the flow
says that very text. ``VOXFLOW_PREPARE_NEXT=off`` turns this off (the bus agent's
``prepare_next`` option); counts are on ``/metrics`` (``voxflow_prompt_cache_*``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping

from engine.agent.session import CallVoice

PREPARE_NEXT_ENV = "VOXFLOW_PREPARE_NEXT"
QUIET_AFTER_QUESTION = 0.25  # seconds: a question's prompt follows it at once, if it has one
log = logging.getLogger(__name__)


def prepare_next_from_env(env: Mapping[str, str] | None = None) -> bool:
    """``VOXFLOW_PREPARE_NEXT``: on unless it says off (``off``, ``0``, ``false``, ``no``)."""
    value = (os.environ if env is None else env).get(PREPARE_NEXT_ENV, "").strip().lower()
    return value not in ("off", "0", "false", "no")


class NextPrompts:
    """One call's preparing of what it may say next (see the module docstring).

    ``speaking`` says whether the agent has a prompt to say that is not over yet.
    """

    def __init__(self, voice: CallVoice, speaking: Callable[[], bool], *, enabled: bool = True) -> None:
        self._voice = voice
        self._speaking = speaking
        self.enabled = enabled and voice.prompt_cache is not None
        self._turn: str | None = None  # the request id of the question being answered
        self._left: list[str] = []
        self._standing: list[str] = []  # the flow's fixed texts, prepared across turns
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    # ---- what the bus agent tells it ----

    def turn_opened(self, request_id: str, texts: tuple[str, ...]) -> None:
        """A question was asked; ``texts`` is what the call may say after it."""
        self.turn_ended()  # a new question replaces the old
        if not self.enabled or not texts:
            return
        self._turn = request_id
        self._left = list(texts)
        self._timer = asyncio.get_running_loop().call_later(QUIET_AFTER_QUESTION, self._resume)

    def prepare_flow(self, texts: tuple[str, ...]) -> None:
        """The flow's fixed texts: prepared whenever the agent is quiet, a turn's own first."""
        if not self.enabled or not texts:
            return
        self._standing = list(texts)
        self._cancel_timer()
        self._timer = asyncio.get_running_loop().call_later(QUIET_AFTER_QUESTION, self._resume)

    def caller_spoke(self) -> None:
        self._resume()

    def prompt_over(self) -> None:
        """A prompt was said, cut or failed: the agent may be quiet now."""
        self._resume()

    def pause(self) -> None:
        """The agent has something to say: stop synthesising now, go on after it."""
        self._cancel_timer()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None

    def turn_ended(self, request_id: str | None = None) -> None:
        """The caller answered (or the question was stopped, replaced, the call ended):
        what is not prepared yet is skipped. With ``request_id``, only if it is this turn's."""
        if request_id is not None and request_id != self._turn:
            return
        self.pause()
        cache = self._voice.prompt_cache
        if self._left and cache is not None:
            cache.stats.skipped_next += len(self._left)
        self._turn = None
        self._left = []

    def close(self) -> None:
        self.pause()
        self._turn, self._left, self._standing = None, [], []

    # ---- preparing ----

    def _resume(self) -> None:
        self._cancel_timer()
        if self._queue() is None or self._speaking():
            return
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._prepare())

    def _queue(self) -> list[str] | None:
        """What to prepare now: the turn's texts, else the flow's (None: nothing)."""
        if self._turn is not None and self._left:
            return self._left
        return self._standing or None

    async def _prepare(self) -> None:
        cache, engine = self._voice.prompt_cache, self._voice.tts
        assert cache is not None
        while (queue := self._queue()) is not None:
            text = queue[0]
            try:
                made = await cache.prepare([text], engine)
            except asyncio.CancelledError:
                raise  # paused: the text stays first in line
            except Exception as error:  # noqa: BLE001 - preparing is only ever a help
                log.warning("could not prepare %r: %s", text[:60], error)
                made = 0
            if queue and queue[0] == text:
                queue.pop(0)
            if queue is self._left:
                cache.stats.prepared_next += made

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
