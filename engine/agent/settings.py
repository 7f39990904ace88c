"""What ``voxflow agent`` needs from its environment, checked all at once.

Required: LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET (the LiveKit
server the agent registers with) and the voice bus the workers use:
VOXFLOW_REDIS_URL or REDIS_URL (an agent is another process, so it cannot
share an in-memory bus). The speech engines come from VOXFLOW_STT /
VOXFLOW_TTS with their keys (engine.agent.engines).

Optional: VOXFLOW_SERVER_URL and VOXFLOW_INTERNAL_TOKEN, where the agent asks
the voxflow server about a call (its trigger's recording setting, language,
engines); VOXFLOW_RECORDINGS_DIR, where ``record`` commands keep their WAV
files (default ./recordings); VOXFLOW_EGRESS_FILEPATH, the egress file path of
whole-call recordings; VOXFLOW_TURN_MODEL=smart-turn, the learned end-of-turn
model for free speech (engine.agent.turn_model_file; fetched once with
``voxflow models fetch smart-turn``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from engine.agent import engines, turn_model_file
from engine.agent.livekit_control import DEFAULT_RECORDING_PATH
from engine.core.errors import VoxflowError

LIVEKIT_VARIABLES = {
    "LIVEKIT_URL": "the LiveKit server's URL, e.g. wss://example.livekit.cloud",
    "LIVEKIT_API_KEY": "the LiveKit API key",
    "LIVEKIT_API_SECRET": "the LiveKit API secret",
}
REDIS_VARIABLES = ("VOXFLOW_REDIS_URL", "REDIS_URL")


@dataclass(frozen=True)
class AgentSettings:
    livekit_url: str
    api_key: str
    api_secret: str
    redis_url: str
    engines: engines.EngineChoice
    server_url: str | None = None
    internal_token: str | None = None
    recordings_dir: Path = Path("recordings")
    egress_filepath: str = DEFAULT_RECORDING_PATH
    turn_model: Path | None = None  # the Smart Turn model file, when calls use it


def settings_from_env(env: Mapping[str, str] | None = None) -> AgentSettings:
    """The agent's settings; a VoxflowError listing everything missing, if anything is."""
    env = os.environ if env is None else env

    def get(name: str) -> str:
        return env.get(name, "").strip()

    missing = [f"{name}: {what}" for name, what in LIVEKIT_VARIABLES.items() if not get(name)]
    redis_url = next((get(name) for name in REDIS_VARIABLES if get(name)), "")
    if not redis_url:
        missing.append(
            "REDIS_URL (or VOXFLOW_REDIS_URL): the Redis server of the voice bus, "
            "the same one the workers use, e.g. redis://localhost:6379/0"
        )
    choice = engines.choose(env)
    missing.extend(engines.problems(choice, env))
    missing.extend(turn_model_file.problems(env))
    if missing:
        lines = "\n".join(f"  - {item}" for item in missing)
        raise VoxflowError(f"voxflow agent cannot start; set:\n{lines}")
    return AgentSettings(
        livekit_url=get("LIVEKIT_URL"),
        api_key=get("LIVEKIT_API_KEY"),
        api_secret=get("LIVEKIT_API_SECRET"),
        redis_url=redis_url,
        engines=choice,
        server_url=get("VOXFLOW_SERVER_URL").rstrip("/") or None,
        internal_token=get("VOXFLOW_INTERNAL_TOKEN") or None,
        recordings_dir=Path(get("VOXFLOW_RECORDINGS_DIR") or "recordings"),
        egress_filepath=get("VOXFLOW_EGRESS_FILEPATH") or DEFAULT_RECORDING_PATH,
        turn_model=turn_model_file.model_path(env),
    )
