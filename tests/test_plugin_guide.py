"""The plugin guide's example, installed from its own folder, works as a node type.

The code is taken from docs/plugins.md itself, so the guide cannot drift from
what voxflow accepts.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
from aiohttp import web

from engine.core.errors import VoxflowError
from engine.language.registry import check_plugin_module
from engine.runtime.temporal_server import TemporalSettings
from tests.background_loop import BackgroundLoop

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "plugins.md"

FLOW = """\
flow: text-me
start: confirm_by_text
nodes:
  confirm_by_text:
    type: send_sms
    to: "${caller_number}"
    text: "Your balance is $${balance}."
    save_as: sms
    next: goodbye
  goodbye:
    type: voice_hangup
    farewell_message: "The gateway said ${sms.status}. Bye."
variables:
  balance: {default: 12}
"""


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


def test_minimal_plugin_is_about_thirty_lines() -> None:
    code = _code_block("python", "`voxflow_sms.py`")
    lines = [line for line in code.splitlines() if line.strip()]
    assert len(lines) <= 40


def _install_guide_plugin(tmp_path: Path) -> Path:
    package = tmp_path / "voxflow-sms"
    package.mkdir()
    (package / "voxflow_sms.py").write_text(_code_block("python", "`voxflow_sms.py`"))
    (package / "pyproject.toml").write_text(_code_block("toml", "`pyproject.toml`"))
    site = tmp_path / "site"
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
            str(site),
            str(package),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return site


def test_guide_plugin_installs_from_its_own_folder_and_runs_in_a_call(
    tmp_path: Path, temporal_settings: TemporalSettings
) -> None:
    """As a user runs it: built and installed as a package, accepted by validate --strict,
    listed by voxflow docs, and sending a real request from a call placed with voxflow chat."""
    site = _install_guide_plugin(tmp_path)
    flow = tmp_path / "text-me.yaml"
    flow.write_text(FLOW)
    gateway = Gateway()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
        "TEMPORAL_ADDRESS": str(temporal_settings.address),
        "NO_COLOR": "1",
    }
    env.pop("SMS_GATEWAY_URL", None)

    def voxflow(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "engine.cli.main", *args],
            capture_output=True,
            text=True,
            env={**env, **extra_env},
            timeout=180,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
        )

    def chat(flow_file: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        """voxflow chat with a caller who says nothing and stays on the line (stdin open:
        at its end the chat hangs up) until the flow ends the call."""
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "engine.cli.main",
                "chat",
                flow_file,
                "--local",
                "--caller",
                "+15551112222",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**env, **extra_env},
            cwd=tmp_path,
        )
        try:
            process.wait(timeout=180)
        finally:
            if process.poll() is None:
                process.kill()
            out, err = process.communicate()
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)

    try:
        checked = voxflow("validate", "--strict", str(flow))
        assert checked.returncode == 0, checked.stdout + checked.stderr
        docs = voxflow("docs", "--out", str(tmp_path / "nodes.md"))
        assert docs.returncode == 0, docs.stdout + docs.stderr
        assert "send_sms" in (tmp_path / "nodes.md").read_text(encoding="utf-8")

        call = chat(str(flow), SMS_GATEWAY_URL=gateway.url)
        assert call.returncode == 0, call.stdout + call.stderr
        assert gateway.received == [{"to": "+15551112222", "text": "Your balance is $12."}], call.stdout
        assert "The gateway said 200. Bye." in call.stdout, call.stdout

        # Without the setting, the call fails saying which setting and where to set it.
        unset = chat(str(flow))
        assert "SMS_GATEWAY_URL is not set" in unset.stdout + unset.stderr, unset.stdout
    finally:
        gateway.close()


def test_flow_using_an_uninstalled_plugin_names_the_unknown_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = tmp_path / "text-me.yaml"
    flow.write_text(FLOW)
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
