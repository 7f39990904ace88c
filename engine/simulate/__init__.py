"""Trying flows without a phone: the call simulator, ``voxflow chat`` and conversation tests.

A simulated call runs on the real engine (the Temporal workflow, the node
activities, the voice bus); only the caller is simulated: a scripted or
typed agent side of the voice bus instead of the LiveKit agent.

Modules, smallest first:

- :mod:`engine.simulate.clock` — flow time that can stand still (chat) while a person types.
- :mod:`engine.simulate.caller` — the scripted caller: the simulated agent plus "no answer".
- :mod:`engine.simulate.fixtures` — fixed answers for http_request, llm and database_query.
- :mod:`engine.simulate.session` — an engine in one process: Temporal, a worker, a voice bus.
- :mod:`engine.simulate.trace` — what a call did: nodes and exits, subflows included.
- :mod:`engine.simulate.conversation` — the conversation test format: loading and checking.
- :mod:`engine.simulate.expectations` — comparing a call with what a test expects.
- :mod:`engine.simulate.runner` — running conversation tests, concurrently.
- :mod:`engine.simulate.coverage` — which nodes and exits of each flow the tests reached.
- :mod:`engine.simulate.report` — printing results and coverage.
- :mod:`engine.simulate.chat` — one interactive call: typed lines → caller actions.
- :mod:`engine.simulate.terminal` — the terminal around a chat.
"""
