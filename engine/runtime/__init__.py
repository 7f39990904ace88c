"""Stage 4, ``run``: every call is a durable Temporal workflow walking its compiled graph.

Modules, smallest first:

- :mod:`engine.runtime.messages` — the dataclasses that cross Temporal: workflow
  input and result, the activity's task and outcome, signals and the query.
- :mod:`engine.runtime.workflow` — ``CallFlowWorkflow``, the interpreter.
- :mod:`engine.runtime.activities` — ``run_node``, the one activity that runs
  every I/O node through its plugin.
- :mod:`engine.runtime.services` / :mod:`engine.runtime.service_types` — what
  plugins are lent (HTTP session, databases, the LLM endpoint, workflow waits).
- :mod:`engine.runtime.config` — connections and the LLM endpoint, from the
  environment or ``voxflow.yaml``; :mod:`engine.runtime.database` — SQLite
  and PostgreSQL with bound parameters.
- :mod:`engine.runtime.worker` — building and running a Temporal worker.
- :mod:`engine.runtime.calls` — starting calls and talking to them from outside.

This package's ``__init__`` imports nothing on purpose: the workflow module is
re-imported inside Temporal's sandbox for every workflow run, parents included.
"""
