"""The terminal around a chat: what the agent says above, the caller's prompt below.

Lines are read on a thread of their own (with line editing and history
when stdin is a terminal), so the call goes on while the person types.
Whatever the call shows is printed above the prompt, which is then drawn
again with what was typed so far. In a pipe (a script, a test) there is no
prompt, and the caller's words are printed as they are said.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from engine.core.output import Painter

PROMPT = "you> "

try:  # line editing and history for input(); absent on some platforms
    import readline
except ImportError:  # pragma: no cover - Linux and macOS have it
    readline = None  # type: ignore[assignment]


class TerminalView:
    """A :class:`~engine.simulate.chat.ChatView` on a terminal, or on any text stream."""

    def __init__(self, out: TextIO | None = None, interactive: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.paint = Painter(self.out)
        self.interactive = sys.stdin.isatty() if interactive is None else interactive
        self.prompting = False  # a prompt is on the screen, waiting for the person
        self._lock = threading.Lock()

    def show(self, kind: str, text: str) -> None:
        if kind == "caller" and self.interactive:
            return  # the person sees what they typed
        with self._lock:
            self._clear_prompt()
            for line in self._format(kind, text):
                print(line, file=self.out)
            self._redraw_prompt()
            self.out.flush()

    def say(self, text: str = "", *styles: str) -> None:
        """A line of the chat's own (banner, tips), outside the conversation."""
        indent = len(text) - len(text.lstrip(" "))
        lines = self._wrap(text.strip(), indent, keep_indent=True) if text.strip() else [""]
        for line in lines:
            self.show("plain", self.paint(line, *styles) if styles else line)

    def _format(self, kind: str, text: str) -> list[str]:
        paint = self.paint
        if kind == "agent":
            first, *rest = self._wrap(text, 7)
            return [f"{paint('agent:', 'cyan', 'bold')} {first}", *rest]
        if kind == "caller":
            return [f"{paint('you:', 'yellow', 'bold')} {text}"]
        if kind == "node":
            return [paint(f"  → {text}", "dim")]
        if kind == "warning":
            first, *rest = self._wrap(text, 4)
            return [
                f"  {paint('!', 'yellow', 'bold')} {paint(first, 'yellow')}",
                *(paint(line, "yellow") for line in rest),
            ]
        if kind == "note":
            return [
                paint(line, "green")
                for part in text.splitlines()
                for line in self._wrap(part, 2, keep_indent=True)
            ]
        if kind == "end":
            return ["", f"{paint('Call ended:', 'bold')} {text}"]
        return [text]

    def _wrap(self, text: str, indent: int, keep_indent: bool = False) -> list[str]:
        """Lines that fit the terminal, continued under the text (not in a pipe)."""
        prefix = " " * indent
        if not self.out.isatty():
            return [prefix + text if keep_indent else text]
        width = max(40, shutil.get_terminal_size().columns - 1)
        lines = textwrap.wrap(
            text,
            width,
            initial_indent=prefix,
            subsequent_indent=prefix,
            drop_whitespace=True,
            replace_whitespace=False,
            break_on_hyphens=False,
        ) or [prefix]
        return lines if keep_indent else [lines[0][indent:], *lines[1:]]

    def _clear_prompt(self) -> None:
        if self.interactive and self.prompting:
            self.out.write("\r\x1b[2K")

    def _redraw_prompt(self) -> None:
        if self.interactive and self.prompting:
            typed = readline.get_line_buffer() if readline is not None else ""
            self.out.write(PROMPT + typed)

    def stop_prompting(self) -> None:
        with self._lock:
            self._clear_prompt()
            self.prompting = False
            self.out.flush()


def start_reader(loop: asyncio.AbstractEventLoop, deliver: Any, view: TerminalView) -> None:
    """Read lines on a daemon thread; ``deliver(loop, text)`` each (None at the end of input)."""

    def read() -> None:
        while True:
            try:
                if view.interactive:
                    view.prompting = True
                    text: str | None = input(PROMPT)
                    view.prompting = False
                else:
                    raw = sys.stdin.readline()
                    text = raw.rstrip("\n") if raw else None
            except (EOFError, OSError, ValueError):
                if view.interactive:
                    view.out.write(view.paint("(Ctrl-D: you hang up)", "dim") + "\n")
                text = None
            view.prompting = False
            deliver(loop, text)
            if text is None:
                return

    threading.Thread(target=read, name="voxflow-chat-input", daemon=True).start()


@contextlib.contextmanager
def terminal_restored() -> Iterator[Callable[[], None]]:
    """Give the terminal back as it was, even if the input thread is still mid-line at the end.

    Yields the function that does it, for an exit that skips ``finally`` blocks (Ctrl-C).
    """
    saved: Any = None
    if sys.stdin.isatty():
        with contextlib.suppress(Exception):
            import termios

            saved = termios.tcgetattr(sys.stdin.fileno())

    def restore() -> None:
        if saved is not None:
            with contextlib.suppress(Exception):
                import termios

                termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)

    try:
        yield restore
    finally:
        restore()
