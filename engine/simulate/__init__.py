"""Trying flows without a phone: the call simulator, ``voxflow chat`` and conversation tests.

A simulated call runs on the real engine (the Temporal workflow, the node
activities, the voice bus); only the caller is simulated: a scripted or
typed agent side of the voice bus instead of the LiveKit agent. The user's
guide is docs/trying-flows.md.

Modules, smallest first:

- :mod:`engine.simulate.clock` — flow time that stands still (chat) while a person types.
- :mod:`engine.simulate.logs` — the Temporal SDK's log lines into a file, not onto the screen.
- :mod:`engine.simulate.caller` — the scripted caller: the simulated agent plus "no answer".
- :mod:`engine.simulate.fixtures` — fixed answers for the nodes that call outside services.
- :mod:`engine.simulate.session` — an engine in one process (Temporal, a worker, a bus), and calls on it.
- :mod:`engine.simulate.trace` — what a finished call did: nodes and exits, subflows included.
- :mod:`engine.simulate.progress` — following a running call's path (chat).
- :mod:`engine.simulate.conversation_schema` — the JSON Schema of conversation test files.
- :mod:`engine.simulate.conversation` — the conversation test format: turns, expectations.
- :mod:`engine.simulate.conversation_loader` — reading test files, with source-mapped problems.
- :mod:`engine.simulate.expectations` — comparing a call with what its test expects.
- :mod:`engine.simulate.runner` — running conversation tests, several at once.
- :mod:`engine.simulate.coverage` — which nodes and exits of each flow the tests reached.
- :mod:`engine.simulate.report` — printing test results and coverage.
- :mod:`engine.simulate.chat` — one interactive call: typed lines become caller actions.
- :mod:`engine.simulate.terminal` — the terminal around a chat.
"""
