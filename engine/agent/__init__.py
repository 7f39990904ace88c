"""The voice agent's speech side: engines, the AgentSession setup, the audio harness.

- ``espeak`` / ``offline_tts``: espeak-ng through ctypes, as a livekit-agents TTS.
- ``grammar`` / ``sphinx`` / ``offline_stt``: pocketsphinx with the expected
  phrases as a grammar, as a livekit-agents STT (confidence: see ``sphinx``).
- ``engines``: VOXFLOW_STT / VOXFLOW_TTS → an STT / TTS (offline or cloud).
- ``vad``: Silero VAD loaded once per process, per-call options.
- ``session``: the AgentSession of a call (VAD, STT, TTS, no LLM; barge-in).
- ``audio_io`` / ``timeline`` / ``harness`` / ``wav``: the session on a
  simulated line, recording what the agent says, for tests and bench/.
"""
