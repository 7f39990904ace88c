"""The voice agent: speech engines, the AgentSession, the bus agent, the LiveKit worker.

Speech:

- ``espeak`` / ``offline_tts``: espeak-ng through ctypes, as a livekit-agents TTS.
- ``grammar`` / ``sphinx`` / ``offline_stt``: pocketsphinx with the expected
  phrases as a grammar, as a livekit-agents STT (confidence: see ``sphinx``).
- ``engines``: VOXFLOW_STT / VOXFLOW_TTS → an STT / TTS (offline or cloud).
- ``vad``: Silero VAD loaded once per process, per-call options.
- ``session``: the AgentSession of a call (VAD, STT, TTS, no LLM; barge-in) and
  ``CallVoice``, the session with its engines.

Serving a call's voice bus (no LiveKit needed):

- ``bus_agent``: commands in, session actions out, events back; joining and
  replacing another agent (recovery).
- ``prompts`` (speak, play), ``listening`` (listen, collect_dtmf, record; caller
  speech and keys → events), ``recorder``, ``clips`` (the beep, WAV files).
- ``prompt_cache``: synthesised prompts kept by content (a folder, Redis);
  ``next_prompts``: what the call may say next, synthesised while the caller answers.
- ``control``: transfer and hang-up, as a protocol; ``livekit_control`` does them
  through LiveKit's API (and starts call recording through egress).

LiveKit and the command line:

- ``worker``: the AgentServer (agent name ``voxflow``), prewarm, the job entrypoint.
- ``rooms``: room ``call-<id>`` ↔ call ``<id>``, the agent's name and identity.
- ``settings`` (what ``voxflow agent`` needs), ``call_context`` (the server's
  word on a call).

Without a phone:

- ``audio_io`` / ``timeline`` / ``harness`` / ``wav``: the session on a simulated
  line, recording what the agent says, for tests and bench/.
- ``audio_chat``: a flow run on the real engine with a caller's WAV, the agent's
  audio written to a WAV (``voxflow chat --audio``).
"""
