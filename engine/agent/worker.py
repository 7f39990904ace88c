"""The LiveKit agent worker: ``voxflow agent``.

An ``AgentServer`` registered under the explicit agent name ``voxflow`` (the
SIP dispatch rule that ``voxflow livekit setup`` creates sends rooms
``call-<id>`` to it). Each job is one call, in its own process:

1. connect (audio only) and wait for the SIP participant: the caller;
2. the room ``call-<id>`` is the call ``<id>`` (engine.agent.rooms); the agent's
   id on the bus is its participant identity in the room;
3. ask the voxflow server for the call's context (recording, language, engines);
4. start an AgentSession (STT, TTS, Silero VAD, no LLM) on the caller's audio;
5. serve the call's voice bus with a BusAgent until the call ends: DTMF from
   the room's ``sip_dtmf_received``, the caller leaving from
   ``participant_disconnected``, transfers and hang-ups through
   LiveKitCallControl, ``call:agent_left`` on a shutdown while the call goes on.

Prewarm loads Silero (and pocketsphinx, when it is the recogniser, and the
Smart Turn model, when VOXFLOW_TURN_MODEL asks for it) once per process, before
any job. Job processes are forked from a server that has
imported this module and the chosen cloud plugins: livekit plugins must be
imported on the main thread.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from pathlib import Path

from livekit import rtc
from livekit.agents import AgentServer, AutoSubscribe, JobContext, JobProcess
from livekit.agents.utils import http_context
from livekit.agents.voice import room_io

from engine.agent import engines, prompt_cache, smart_turn, sphinx, turn_model_file
from engine.agent import vad as vad_models
from engine.agent.bus_agent import BusAgent, BusAgentOptions
from engine.agent.call_context import CallContext, fetch_call_context
from engine.agent.control import CallControlError
from engine.agent.listening import ListeningOptions
from engine.agent.livekit_control import LiveKitCallControl
from engine.agent.rooms import AGENT_NAME, call_id_from_room
from engine.agent.session import CallVoice, TurnOptions, VoxflowAgent, build_session
from engine.agent.settings import AgentSettings, settings_from_env
from engine.agent.turns import EndOfTurn, session_stt, turn_rule
from engine.core.errors import VoxflowError
from engine.voice.bus import VoiceBus
from engine.voice.redis_bus import RedisVoiceBus

SAMPLE_RATE = 16000  # telephone audio; the engines and VAD all take it as it is
RECORDING_STATE_OWNER = "recording"  # the bus document of the call's egress
HTTP_PORT_ENV = "VOXFLOW_AGENT_HTTP_PORT"
DEFAULT_HTTP_PORT = 8081  # LiveKit Agents' own default
LOAD_THRESHOLD_ENV = "VOXFLOW_AGENT_LOAD_THRESHOLD"
log = logging.getLogger(__name__)


def build_server(settings: AgentSettings) -> AgentServer:
    # Imported now, in the server process, so that forked job processes have them.
    engines.import_plugins(settings.engines)
    threshold = _load_threshold()
    server = AgentServer(
        port=_http_port(),
        # Taking calls whatever the load: LiveKit is told none either (it offers no call to a
        # worker that reports a load of 1, a busy CPU).
        load_fnc=_no_load if threshold == math.inf else None,
        ws_url=settings.livekit_url,
        api_key=settings.api_key,
        api_secret=settings.api_secret,
        setup_fnc=prewarm,
        preload_modules=[__name__],
    )
    if threshold is not None:
        server.update_options(load_threshold=threshold)
    server.rtc_session(entrypoint, agent_name=AGENT_NAME)
    return server


def _http_port() -> int:
    """The agent's health-check HTTP port: VOXFLOW_AGENT_HTTP_PORT (0: any free one), else 8081."""
    value = os.environ.get(HTTP_PORT_ENV, "").strip()
    try:
        return int(value) if value else DEFAULT_HTTP_PORT
    except ValueError:
        raise VoxflowError(
            f"{HTTP_PORT_ENV}={value!r} is not a port number; set a number "
            "(0 for any free port), or leave it unset for 8081."
        ) from None


def _no_load() -> float:
    return 0.0


def _load_threshold() -> float | None:
    """VOXFLOW_AGENT_LOAD_THRESHOLD: the machine load (0..1) above which the worker takes no
    new call (LiveKit Agents' default: 0.7); ``inf`` takes calls whatever the load, and
    reports no load to LiveKit (a test bed on a shared machine)."""
    value = os.environ.get(LOAD_THRESHOLD_ENV, "").strip()
    if not value:
        return None
    try:
        threshold = float(value)
    except ValueError:
        threshold = -1.0
    if not threshold > 0:
        raise VoxflowError(
            f"{LOAD_THRESHOLD_ENV}={value!r}: set a load above 0, such as 0.7 "
            "(LiveKit Agents' default), or inf."
        )
    return threshold


def prewarm(proc: JobProcess) -> None:
    """Once per job process: the VAD model, the offline recogniser and the turn model if
    they are used."""
    proc.userdata["vad"] = vad_models.prewarm()
    path = turn_model_file.model_path()
    if path is not None:
        smart_turn.load(path)
    if engines.choose().stt == "offline":
        sphinx.prewarm_process()


async def entrypoint(ctx: JobContext) -> None:
    call_id = call_id_from_room(ctx.room.name)
    if call_id is None:
        log.warning("room %s is not a voxflow call (call-<id>); leaving it", ctx.room.name)
        ctx.shutdown("not a voxflow call")
        return
    settings = settings_from_env()
    # Agents on several machines share one prompt cache: the voice bus's Redis, unless
    # VOXFLOW_PROMPT_CACHE names another place.
    os.environ.setdefault(prompt_cache.CACHE_ENV, settings.redis_url)
    await ctx.connect(auto_subscribe=AutoSubscribe.AUDIO_ONLY)
    caller = await ctx.wait_for_participant(kind=rtc.ParticipantKind.PARTICIPANT_KIND_SIP)
    context = None
    if settings.server_url:
        context = await fetch_call_context(
            settings.server_url, settings.internal_token, call_id, session=http_context.http_session()
        )
    voice = await _start_voice(ctx, caller, context, settings.turn_model)
    bus = RedisVoiceBus.from_url(settings.redis_url)
    control = LiveKitCallControl(ctx.api, ctx.room.name, caller.identity)
    agent = BusAgent(
        bus,
        call_id,
        voice,
        control,
        # Its identity in the room: the server matches LiveKit's participant_left to it.
        agent_id=ctx.room.local_participant.identity or f"agent-{ctx.job.id}",
        options=BusAgentOptions(
            listening=ListeningOptions(recordings_dir=settings.recordings_dir),
            flow_prompts=context.prompts if context is not None else (),
        ),
    )

    def on_dtmf(event: rtc.SipDTMF) -> None:
        agent.dtmf(event.digit)

    def on_left(participant: rtc.RemoteParticipant) -> None:
        if participant.identity == caller.identity:
            agent.caller_left()

    ctx.room.on("sip_dtmf_received", on_dtmf)
    ctx.room.on("participant_disconnected", on_left)
    ctx.add_shutdown_callback(agent.leave)
    if context is not None and context.enable_recording:
        await record_call(control, bus, call_id, settings.egress_filepath)
    try:
        ended = await agent.start()
    finally:
        await bus.close()
    ctx.shutdown(f"the call ended ({ended or 'agent stopped'})")


async def record_call(control: LiveKitCallControl, bus: VoiceBus, call_id: str, filepath: str) -> str | None:
    """Record the whole call through LiveKit egress (the trigger's enable_recording).

    The egress id is kept on the call's bus (``recording``); when LiveKit refuses,
    the call goes on unrecorded and the reason is logged. Returns the egress id.
    """
    try:
        egress = await control.start_recording(filepath)
    except CallControlError as error:
        log.warning("call %s: %s", call_id, error)
        return None
    await bus.save_state(call_id, RECORDING_STATE_OWNER, {"egress_id": egress, "filepath": filepath})
    return egress


async def _start_voice(
    ctx: JobContext, caller: rtc.RemoteParticipant, context: CallContext | None, turn_model: Path | None
) -> CallVoice:
    choice = engines.choose(
        stt_name=context.stt if context else None, tts_name=context.tts if context else None
    )
    language = (context.language if context else None) or "en-US"
    speech_in = engines.make_stt(choice.stt, language=language)
    speech_out = engines.make_tts(
        choice.tts,
        language=language,
        voice=engines.engine_voice(choice.tts, context.voice if context else None),
    )
    vad = vad_models.for_call()
    model = await asyncio.to_thread(smart_turn.load, turn_model) if turn_model is not None else None
    turns = TurnOptions(end_of_turn=EndOfTurn(model=model))
    heard_by = session_stt(speech_in, vad, turns.end_of_turn)
    session = build_session(stt_engine=heard_by, tts_engine=speech_out, vad=vad, turns=turns)
    agent = VoxflowAgent()
    await session.start(
        agent,
        room=ctx.room,
        room_options=room_io.RoomOptions(
            participant_identity=caller.identity,
            participant_kinds=[rtc.ParticipantKind.PARTICIPANT_KIND_SIP],
            audio_input=room_io.AudioInputOptions(sample_rate=SAMPLE_RATE, pre_connect_audio=False),
            audio_output=room_io.AudioOutputOptions(sample_rate=SAMPLE_RATE),
            text_output=False,
            # The bus agent reports the caller leaving and ends the job itself.
            close_on_disconnect=False,
        ),
        record=False,
    )
    return CallVoice(
        session,
        agent,
        speech_in,
        speech_out,
        vad,
        turns=turn_rule(heard_by),
        prompt_cache=prompt_cache.shared_cache(),
    )


def run(settings: AgentSettings, *, log_level: str = "INFO", log_format: str = "colored") -> None:
    """Run the worker until SIGINT/SIGTERM (then drain: calls in progress finish)."""
    # livekit's own runner: signal handling, draining and the job process pool.
    from livekit.agents.cli import proto
    from livekit.agents.cli.cli import _run_worker

    os.environ.setdefault("LIVEKIT_URL", settings.livekit_url)
    _run_worker(
        build_server(settings),
        proto.CliArgs(
            log_level=log_level,
            url=settings.livekit_url,
            api_key=settings.api_key,
            api_secret=settings.api_secret,
            log_format=log_format,
        ),
    )
