"""The scripted caller: :class:`~engine.voice.simulated_agent.SimulatedAgent` plus what tests need.

It adds to the simulated agent:

- :class:`NoAnswer`, "the caller does not answer this question": it holds its
  next actions until the flow stops waiting for the question being asked (its
  no-input timeout passed and it sent a ``stop``, or it asked something else).
  Unlike ``Silence(6)`` it needs no knowledge of the node's timeout, so it
  cannot race it.
- Knowing when a key collection is over: once the caller has typed
  ``num_digits`` keys or the ``finish_on_key``, their next words or keys wait
  for the flow's next question instead of going into the finished collection.
- :attr:`idle` and an ``on_idle`` callback, so ``voxflow chat`` can stop flow
  time while the person at the keyboard has nothing queued.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias

from engine.voice.bus import VoiceBus
from engine.voice.messages import CollectDtmf, Command
from engine.voice.simulated_agent import CallerAction, SimulatedAgent


@dataclass(frozen=True)
class NoAnswer:
    """The caller does not answer the question the flow asks now (or asks next)."""


ScriptAction: TypeAlias = CallerAction | NoAnswer


class ScriptedCaller(SimulatedAgent):
    """A simulated agent side that also understands :class:`NoAnswer`."""

    def __init__(
        self,
        bus: VoiceBus,
        call_id: str,
        actions: Iterable[ScriptAction] = (),
        *,
        on_idle: Callable[[bool], None] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(bus, call_id, (), **options)
        self.on_idle = on_idle
        self._holding: str | None = None  # the request id of a question not answered
        self._typed = ""  # keys typed into the current collect_dtmf
        self._was_idle: bool | None = None
        self.add(*actions)

    # ---- driving it -------------------------------------------------------

    def add(self, *actions: ScriptAction) -> None:  # type: ignore[override]
        """Queue more caller actions (call from the event loop the caller runs on)."""
        self._actions.extend(actions)  # type: ignore[arg-type]
        self._wake.set()
        self._notify()

    @property
    def idle(self) -> bool:
        """Nothing queued and no question being left unanswered: the caller waits for the person."""
        return not self._actions and self._holding is None

    # ---- the simulated agent's hooks -----------------------------------

    async def _handle(self, command: Command) -> None:
        if isinstance(command, CollectDtmf):
            self._typed = ""
        await super()._handle(command)
        self._notify()

    async def _act(self) -> None:
        while not self.ended:
            if self._holding is not None:
                if self._input is not None and self._input.request_id == self._holding:
                    break  # the question is still open: the caller keeps quiet
                self._holding = None
            if self._actions and isinstance(self._actions[0], NoAnswer):
                if self._input is None:
                    break  # no question yet: wait for one to leave unanswered
                self._actions.popleft()
                self._holding = self._input.request_id
                continue
            # The simulated agent performs what comes before the next NoAnswer.
            tail = self._split_at_no_answer()
            try:
                await super()._act()
            finally:
                left = len(self._actions)
                self._actions.extend(tail)  # type: ignore[arg-type]
            if left or not tail:
                break  # waiting for the flow, or nothing more to do
        self._notify()

    async def _press(self, key: str, rid: str | None = None) -> None:
        request = self._input
        await super()._press(key, rid)
        if isinstance(request, CollectDtmf) and self._input is request and rid is None:
            # The flow counts the keys; the caller knows when it has typed enough.
            if request.finish_on_key and key == request.finish_on_key:
                self._input = None
            else:
                self._typed += key
                if request.num_digits is not None and len(self._typed) >= request.num_digits:
                    self._input = None

    # ---- helpers ------------------------------------------------------------

    def _split_at_no_answer(self) -> list[Any]:
        """Take the first NoAnswer and everything after it off the queue."""
        for index, action in enumerate(self._actions):
            if isinstance(action, NoAnswer):
                tail = list(self._actions)[index:]
                for _ in tail:
                    self._actions.pop()
                return tail
        return []

    def _notify(self) -> None:
        idle = self.idle
        if self.on_idle is not None and idle != self._was_idle:
            self._was_idle = idle
            self.on_idle(idle)
