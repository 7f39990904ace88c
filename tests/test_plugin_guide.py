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

from engine.errors import VoxflowError
from engine.registry import check_plugin_module

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
    next: goodbye
  goodbye:
    type: voice_hangup
    farewell_message: "Bye."
variables:
  balance: {default: 12}
"""

CHECK = """\
import asyncio, json, sys
from aiohttp import web
from engine.cli.main import main
from engine.plugin_api import NodeContext
import voxflow_sms

code = main(["validate", "--strict", "--format", "json", sys.argv[1]])
received = []

async def handler(request):
    received.append(await request.json())
    return web.json_response({"ok": True})

async def run_node():
    app = web.Application()
    app.router.add_post("/sms", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    import os
    os.environ["SMS_GATEWAY_URL"] = f"http://127.0.0.1:{port}/sms"
    context = NodeContext("c1", "confirm_by_text", {"caller_number": "+15551112222", "balance": 12})
    config = {"to": "${caller_number}", "text": "Your balance is $${balance}.", "next": "goodbye"}
    result = await voxflow_sms.execute(config, context, object())
    await runner.cleanup()
    return result

result = asyncio.run(run_node())
print(json.dumps({"validate": code, "exit": result.exit, "outputs": dict(result.outputs),
                  "received": received}))
"""


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


def test_guide_plugin_installs_from_its_own_folder_and_runs(tmp_path: Path) -> None:
    package = tmp_path / "voxflow-sms"
    package.mkdir()
    (package / "voxflow_sms.py").write_text(_code_block("python", "`voxflow_sms.py`"))
    (package / "pyproject.toml").write_text(_code_block("toml", "`pyproject.toml`"))
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--no-build-isolation", "--target", str(site), str(package)],
        check=True, capture_output=True, timeout=300,
    )
    flow = tmp_path / "text-me.yaml"
    flow.write_text(FLOW)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    completed = subprocess.run(
        [sys.executable, "-c", CHECK, str(flow)],
        capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["validate"] == 0
    assert report["exit"] == "next"
    assert report["outputs"] == {"status": 200}
    assert report["received"] == [{"to": "+15551112222", "text": "Your balance is $12."}]


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
    ],
)
def test_malformed_plugin_fails_at_load_naming_it(attributes: dict[str, object], words: str) -> None:
    with pytest.raises(VoxflowError) as caught:
        check_plugin_module(_module(**attributes), "fake", "fake-dist", "node plugin 'fake' (x)")
    assert "node plugin 'fake'" in caught.value.message
    assert words in caught.value.message, caught.value.message


def test_plugin_guide_mentions_every_contract_name() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    for name in ("NODE_TYPE", "DOC", "SCHEMA", "RUNS_IN", "OUTPUTS", "WAITS", "execute"):
        assert f"`{name}`" in text


def test_built_in_node_schemas_are_valid_json_schema() -> None:
    """voxflow's own plugins skip the meta-schema check at load (it cost ~90 ms a command): here it runs."""
    import jsonschema

    from engine.registry import OWN_DISTRIBUTION, default_registry

    own = [t for t in default_registry() if t.distribution == OWN_DISTRIBUTION]
    assert len(own) >= 10
    for node_type in own:
        jsonschema.Draft202012Validator.check_schema(node_type.schema)


def test_every_built_in_says_what_kind_of_node_it_is() -> None:
    """The engine names no built-in type: the attributes say which talk to the caller,
    which call an outside service, and which the workflow gives a job."""
    from engine.registry import default_registry
    from engine.runtime.builtin_nodes import BUILTIN

    registry = default_registry()
    assert registry.get("voice_listen").talks_to_caller
    assert not registry.get("voice_listen").calls_outside
    for name in ("http_request", "llm", "database_query"):
        assert registry.get(name).calls_outside, name
    assert not registry.get("set").calls_outside
    assert set(BUILTIN.logic) == {"set", "condition", "end", "wait_for_signal", "subflow"}
    assert BUILTIN.instant == {"set", "condition", "end"}
    assert BUILTIN.roles == {"end": "end", "say": "voice_speak", "farewell": "voice_hangup",
                             "transfer": "voice_transfer"}


def test_what_the_engine_asks_of_a_node_comes_from_its_attributes() -> None:
    from engine.registry import awaited_signal, called_flow, engine_role, installed

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
