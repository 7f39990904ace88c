"""The plugin guide's example, installed from its own folder, works as a node type.

Everything is taken from docs/plugins.md itself: the plugin's files, the flow, its
conversation test and answers, and the commands, run as written. So the guide cannot
drift from what voxflow does with a third party's node.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
import types
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path

import pytest
from aiohttp import web

from engine.core.errors import VoxflowError
from engine.language.registry import (
    ENTRY_POINT_GROUP,
    PluginRegistry,
    check_plugin_module,
    default_registry,
    load_plugin,
)
from engine.runtime.temporal_server import TemporalSettings
from engine.simulate.session import DEFAULT_CALLER
from tests.background_loop import BackgroundLoop

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "plugins.md"
# What the flow texts the caller, and what the agent then says (docs/plugins.md's flow).
TEXT = "Your balance is $12."
FAREWELL = "The gateway said 200. Bye."


class Gateway:
    """A local SMS gateway: an HTTP server on a free port that keeps what it receives."""

    def __init__(self) -> None:
        self.received: list[object] = []
        self.loop = BackgroundLoop()
        self.url = self.loop.run(self._start())

    async def _start(self) -> str:
        async def handler(request: web.Request) -> web.Response:
            self.received.append(await request.json())
            return web.json_response({"ok": True})

        app = web.Application()
        app.router.add_post("/sms", handler)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}/sms"

    def close(self) -> None:
        self.loop.run(self.runner.cleanup())
        self.loop.close()


def _code_block(language: str, after: str) -> str:
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index(after)
    match = re.compile(rf"```{language}\n(.*?)```", re.S).search(text, start)
    assert match, f"no {language} block after {after!r} in {GUIDE}"
    return match.group(1)


def _commands(after: str) -> list[list[str]]:
    """The command lines of the guide's console block after ``after``, split as a shell would."""
    return [shlex.split(line) for line in _code_block("console", after).splitlines() if line.strip()]


def test_minimal_plugin_is_about_thirty_lines() -> None:
    code = _code_block("python", "`voxflow_sms.py`")
    lines = [line for line in code.splitlines() if line.strip()]
    assert len(lines) <= 40


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The guide's package, built from its two files (and the short form of fixed answers the
    guide adds to the module) and installed with pip into a folder of its own."""
    tmp_path = tmp_path_factory.mktemp("plugin")
    package = tmp_path / "voxflow-sms"
    package.mkdir()
    module = _code_block("python", "`voxflow_sms.py`")
    short_form = _code_block("python", "## Fixed answers in tests")
    (package / "voxflow_sms.py").write_text(module + "\n\n" + short_form)
    (package / "pyproject.toml").write_text(_code_block("toml", "`pyproject.toml`"))
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(package),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder holding flows/ as the guide lays it out: the flow, its test and its answers."""
    tests = tmp_path / "flows" / "tests"
    tests.mkdir(parents=True)
    (tmp_path / "flows" / "text-me.yaml").write_text(_code_block("yaml", "`flows/text-me.yaml`"))
    (tests / "text-me.test.yaml").write_text(_code_block("yaml", "`flows/tests/text-me.test.yaml`"))
    (tests / "text-me.answers.yaml").write_text(_code_block("yaml", "`flows/tests/text-me.answers.yaml`"))
    return tmp_path


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    server = Gateway()
    try:
        yield server
    finally:
        server.close()


def _voxflow(words: list[str], cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a ``voxflow ...`` line of the guide as the user would (this checkout's voxflow).

    ``voxflow chat`` gets a caller who says nothing and stays on the line (stdin open: at
    its end the chat hangs up) until the flow ends the call.
    """
    assert words[0] == "voxflow", words
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.cli.main", *words[1:]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(env),
        cwd=cwd,
    )
    try:
        process.wait(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
        out, err = process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def _environment(site: Path, temporal: TemporalSettings, **extra: str) -> dict[str, str]:
    """This process's environment with the package installed; SMS_GATEWAY_URL only if given."""
    env = {key: value for key, value in os.environ.items() if key != "SMS_GATEWAY_URL"}
    return {
        **env,
        "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
        "TEMPORAL_ADDRESS": str(temporal.address),
        "TEMPORAL_NAMESPACE": temporal.namespace,
        "NO_COLOR": "1",
        **extra,
    }


def test_the_guides_commands_run_as_written(
    site: Path, project: Path, gateway: Gateway, temporal_settings: TemporalSettings
) -> None:
    """validate --strict, schema, docs and a call with voxflow chat that really sends the text;
    then voxflow test and voxflow chat --answers, which send nothing."""
    env = _environment(site, temporal_settings, SMS_GATEWAY_URL=gateway.url)
    trying = _commands("Then, in the folder that holds")
    assert [words[:2] for words in trying] == [
        ["voxflow", "validate"],
        ["voxflow", "schema"],
        ["voxflow", "docs"],
        ["voxflow", "chat"],
    ]
    for words in trying:
        done = _voxflow(words, project, env)
        assert done.returncode == 0, f"{shlex.join(words)}:\n{done.stdout}{done.stderr}"
        if words[1] == "chat":
            assert FAREWELL in done.stdout, done.stdout
    schema = json.loads((project / "schemas" / "flow.schema.json").read_text(encoding="utf-8"))
    assert "send_sms" in json.dumps(schema["$defs"]["node_types"])
    assert "## `send_sms`" in (project / "docs" / "nodes.md").read_text(encoding="utf-8")
    assert gateway.received == [{"to": DEFAULT_CALLER, "text": TEXT}]

    testing = _commands("`flows/tests/text-me.answers.yaml`")
    assert [words[:2] for words in testing] == [["voxflow", "test"], ["voxflow", "chat"]]
    for words in testing:
        done = _voxflow(words, project, env)
        assert done.returncode == 0, f"{shlex.join(words)}:\n{done.stdout}{done.stderr}"
        if words[1] == "chat":
            assert FAREWELL in done.stdout, done.stdout
        else:
            assert "texts the balance, then says goodbye" in done.stdout, done.stdout
    assert len(gateway.received) == 1, gateway.received  # fixed answers: no text sent

    # Without the setting, the call fails saying which setting and where to set it.
    unset = _voxflow(trying[-1], project, _environment(site, temporal_settings))
    assert "SMS_GATEWAY_URL is not set" in unset.stdout + unset.stderr, unset.stdout


def test_the_guides_plugin_runs_in_a_call_on_a_real_worker(
    site: Path,
    project: Path,
    gateway: Gateway,
    temporal_settings: TemporalSettings,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The guide's flow as a phone call runs it: a ``voxflow worker`` process with the package
    installed, the voice bus on Redis with a caller on it, and the node's real request."""
    from engine.language.project import compile_file
    from engine.runtime.calls import start_call
    from engine.runtime.messages import COMPLETED, CallResult
    from engine.runtime.temporal_server import connect_client
    from engine.voice.redis_bus import RedisVoiceBus
    from engine.voice.simulated_agent import Line, SimulatedAgent
    from tests.runtime.conftest import new_call_id
    from tests.runtime.worker_process import WorkerProcess

    # This process compiles the flow (as the server does) with the plugin found the way every
    # voxflow process finds it: its entry point, in the folder it was installed to.
    builtin = list(default_registry())  # loaded before the folder is on the path
    monkeypatch.syspath_prepend(str(site))
    (entry_point,) = metadata.distribution("voxflow-sms").entry_points.select(group=ENTRY_POINT_GROUP)
    graph = compile_file(
        project / "flows" / "text-me.yaml", PluginRegistry([*builtin, load_plugin(entry_point)])
    )

    queue = f"guide-{new_call_id()}"
    env = _environment(site, temporal_settings, SMS_GATEWAY_URL=gateway.url, VOXFLOW_REDIS_URL=redis_url)
    worker = WorkerProcess(["--task-queue", queue], env)
    try:
        worker.wait_for("voxflow worker ready", timeout=120)

        async def call() -> tuple[CallResult, list[Line]]:
            bus = RedisVoiceBus.from_url(redis_url)
            call_id = new_call_id("guide")
            agent = SimulatedAgent(bus, call_id, [], reaction=0.05)  # a caller who listens
            agent.start()
            try:
                client = await connect_client(temporal_settings)
                handle = await start_call(
                    client, graph, call_id, call={"caller_number": "+15551112222"}, task_queue=queue
                )
                result = await asyncio.wait_for(handle.result(), 120)
            finally:
                await agent.stop(announce=False)
                await bus.close()
            return result, agent.transcript

        result, transcript = asyncio.run(call())
        assert result.status == COMPLETED, (result.reason, "".join(worker.output))
        assert result.path == ["confirm_by_text", "goodbye"]
        assert result.variables["sms"] == {"status": 200}
        assert gateway.received == [{"to": "+15551112222", "text": TEXT}]
        assert [line.text for line in transcript if line.speaker == "agent"] == [FAREWELL, "[hangs up]"]
        assert worker.terminate() == 0, "".join(worker.output)
    finally:
        worker.close()


def test_flow_using_an_uninstalled_plugin_names_the_unknown_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = tmp_path / "text-me.yaml"
    flow.write_text(_code_block("yaml", "`flows/text-me.yaml`"))
    from engine.cli.main import main

    assert main(["validate", str(flow), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    messages = [d["message"] for d in report["diagnostics"]]
    assert "unknown node type 'send_sms'." in messages


def _module(**attributes: object) -> types.ModuleType:
    module = types.ModuleType("fake_plugin")

    async def execute(config: object, context: object, services: object) -> None:
        return None

    defaults: dict[str, object] = {
        "NODE_TYPE": "fake",
        "DOC": "A fake node.",
        "SCHEMA": {"type": "object", "properties": {}},
        "execute": execute,
    }
    for key, value in {**defaults, **attributes}.items():
        if value is not None:
            setattr(module, key, value)
    return module


@pytest.mark.parametrize(
    ("attributes", "words"),
    [
        ({"NODE_TYPE": "Fake Node"}, "NODE_TYPE must be a lowercase name"),
        ({"NODE_TYPE": "other"}, "entry point is named 'fake'"),
        ({"DOC": None}, "DOC must be a text"),
        ({"SCHEMA": {"type": "array"}}, "SCHEMA must be a JSON Schema"),
        ({"SCHEMA": {"type": "object", "properties": {"description": {}}}}, "may not define"),
        ({"SCHEMA": {"type": "object", "properties": {"x": {"type": 5}}}}, "not valid JSON Schema"),
        ({"RUNS_IN": "thread"}, "RUNS_IN must be"),
        ({"HEARS_HANGUP": "yes"}, "HEARS_HANGUP must be True or False"),
        ({"execute": lambda config, context, services: None}, "async def execute"),
        ({"OUTPUTS": ["a"]}, "OUTPUTS must map"),
        ({"TALKS_TO_CALLER": "yes"}, "TALKS_TO_CALLER must be True or False"),
        # Only voxflow's own logic nodes run inside the workflow (a fixed set, for replay):
        # another package's would pass loading and then fail mid-call.
        ({"RUNS_IN": "workflow"}, "only for voxflow's own logic nodes"),
        ({"ENGINE_ROLE": "farewell"}, "ENGINE_ROLE is for voxflow's own nodes only"),
        ({"SPOKEN_FIELDS": "prompt"}, "SPOKEN_FIELDS must be a tuple of field names"),
        ({"SPOKEN_FIELDS": ("prompt",)}, "SPOKEN_FIELDS names 'prompt', which is not a field"),
        ({"ANSWER_FIELDS": {"status": "The status."}}, "go together"),
        (
            {"ANSWER_FIELDS": {"exit": "x"}, "simulated_outputs": lambda answer, config: {}},
            "ANSWER_FIELDS may not define exit",
        ),
        (
            {"ANSWER_FIELDS": {"status": "x"}, "simulated_outputs": lambda answer: {}},
            "simulated_outputs(answer, config)",
        ),
    ],
)
def test_malformed_plugin_fails_at_load_naming_it(attributes: dict[str, object], words: str) -> None:
    with pytest.raises(VoxflowError) as caught:
        check_plugin_module(_module(**attributes), "fake", "fake-dist", "node plugin 'fake' (x)")
    assert "node plugin 'fake'" in caught.value.message
    assert words in caught.value.message, caught.value.message


def test_plugin_guide_mentions_every_contract_name() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    for name in (
        "NODE_TYPE",
        "DOC",
        "SCHEMA",
        "RUNS_IN",
        "OUTPUTS",
        "WAITS",
        "TALKS_TO_CALLER",
        "HEARS_HANGUP",
        "CALLS_FLOW",
        "WAITS_FOR_SIGNAL",
        "SPOKEN_FIELDS",
        "execute",
    ):
        assert f"`{name}`" in text


def test_built_in_node_schemas_are_valid_json_schema() -> None:
    """voxflow's own plugins skip the meta-schema check at load (it cost ~90 ms a command): here it runs."""
    import jsonschema

    from engine.language.registry import OWN_DISTRIBUTION, default_registry

    own = [t for t in default_registry() if t.distribution == OWN_DISTRIBUTION]
    assert len(own) >= 10
    for node_type in own:
        jsonschema.Draft202012Validator.check_schema(node_type.schema)


def test_every_built_in_says_what_kind_of_node_it_is() -> None:
    """The engine names no built-in type: the attributes say which talk to the caller,
    which call an outside service, and which the workflow gives a job."""
    from engine.language.registry import default_registry
    from engine.runtime.builtin_nodes import BUILTIN

    registry = default_registry()
    assert registry.get("voice_listen").talks_to_caller
    assert not registry.get("voice_listen").calls_outside
    for name in ("http_request", "llm", "database_query"):
        assert registry.get(name).calls_outside, name
    assert not registry.get("set").calls_outside
    assert registry.get("voice_menu").spoken_fields == ("prompt",)
    assert registry.get("http_request").simulated_outputs is not None
    assert set(registry.get("database_query").answer_fields) == {"rows", "row_count"}
    assert set(BUILTIN.logic) == {"set", "condition", "end", "wait_for_signal", "subflow"}
    assert BUILTIN.instant == {"set", "condition", "end"}
    assert BUILTIN.roles == {
        "end": "end",
        "say": "voice_speak",
        "farewell": "voice_hangup",
        "transfer": "voice_transfer",
    }


def test_what_the_engine_asks_of_a_node_comes_from_its_attributes() -> None:
    from engine.language.registry import awaited_signal, called_flow, engine_role, installed

    assert called_flow("subflow", {"flow": "billing"}) == "billing"
    assert called_flow("set", {"flow": "billing"}) is None
    assert awaited_signal("wait_for_signal", {"signal": "approved"}) == "approved"
    assert awaited_signal("http_request", {"signal": "approved"}) is None
    assert engine_role("end") == "end" and engine_role("voice_listen") is None
    http = installed("http_request")
    assert http is not None and http.describe is not None
    assert http.describe({"url": "https://example.com/x"}) == "GET https://example.com/x"
    assert installed("condition").diagram_shape == "decision"  # type: ignore[union-attr]
    assert installed("no_such_type") is None
