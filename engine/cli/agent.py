"""``voxflow agent``: run the LiveKit voice agent that answers calls.

It registers with LiveKit (LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET)
as the agent ``voxflow``, and serves every call room ``call-<id>`` LiveKit
dispatches to it, carrying out the flow's voice commands from the voice bus
(REDIS_URL). Speech engines: VOXFLOW_STT / VOXFLOW_TTS (``offline``, the
default, needs no key; ``deepgram``, ``elevenlabs`` and ``openai`` need
DEEPGRAM_API_KEY, ELEVEN_API_KEY, OPENAI_API_KEY). Stops on Ctrl-C or SIGTERM
after the calls in progress end.
"""

from __future__ import annotations

import argparse
import sys

HELP = "Run the LiveKit voice agent that answers calls (speech recognition and synthesis)."
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=LOG_LEVELS,
        type=str.upper,
        help="how much to log (default INFO)",
    )
    parser.add_argument(
        "--log-format",
        default="colored" if sys.stderr.isatty() else "json",
        choices=("colored", "json"),
        help="logs for people or for a log collector (default: colored on a terminal, json otherwise)",
    )
    parser.add_argument("--check", action="store_true", help="only check the configuration, then exit")


def run(args: argparse.Namespace) -> int:
    # Imported here: the agent's dependencies are heavy, and other commands never need them.
    from engine.agent.settings import settings_from_env

    settings = settings_from_env()
    if args.check:
        print(
            f"voxflow agent configuration is complete: LiveKit at {settings.livekit_url}, "
            f"speech recognition '{settings.engines.stt}', speech synthesis "
            f"'{settings.engines.tts}'."
        )
        return 0
    from engine.agent import worker

    worker.run(settings, log_level=args.log_level, log_format=args.log_format)
    return 0
