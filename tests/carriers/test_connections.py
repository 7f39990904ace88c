"""``voxflow connections``: stored encrypted, never shown, and tested against the real wire formats.

Telnyx and Twilio are local servers speaking their REST APIs (tests/carriers),
LiveKit is the local Twirp server of tests/server/fake_livekit.py, the LLM a
local OpenAI-compatible ``/v1/models``, the database a real SQLite file.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from aiohttp import web
from cryptography.fernet import Fernet

from engine.cli.main import main
from engine.connections.environment import with_connections
from engine.connections.store import default_store
from engine.runtime.config import load_runtime_config
from engine.server.settings import settings_from_env
from tests.carriers import fake_telnyx, fake_twilio
from tests.carriers.local_server import serving
from tests.server.fake_livekit import API_KEY as LK_KEY
from tests.server.fake_livekit import API_SECRET as LK_SECRET
from tests.server.fake_livekit import FakeLiveKit
from tests.server.support import TelnyxSigner

LLM_KEY = "sk-test-0123456789abcdef"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out + err


def test_values_are_encrypted_at_rest_and_never_printed(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    public_key = TelnyxSigner().public_base64
    monkeypatch.setenv("TELNYX_API_KEY", fake_telnyx.API_KEY)
    monkeypatch.setenv("TELNYX_PUBLIC_KEY", public_key)
    code, said = run(capsys, "connections", "add", "telnyx-main", "telnyx", "--from-env")
    assert code == 0, said
    code, said2 = run(
        capsys,
        "connections",
        "add",
        "twilio-main",
        "twilio",
        "--set",
        f"account_sid={fake_twilio.ACCOUNT_SID}",
        "--set",
        f"auth_token={fake_twilio.AUTH_TOKEN}",
    )
    assert code == 0, said2
    code, listed = run(capsys, "connections", "list")
    assert code == 0
    assert "telnyx-main" in listed and "twilio-main" in listed and "auth_token" in listed
    secrets = (fake_telnyx.API_KEY, public_key, fake_twilio.ACCOUNT_SID, fake_twilio.AUTH_TOKEN)
    path = project / ".voxflow" / "connections.json"
    text = path.read_text(encoding="utf-8")
    for secret in secrets:
        assert secret not in said + said2 + listed + caplog.text
        assert secret not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(text)["connections"]["twilio-main"]["fields"] == ["account_sid", "auth_token"]
    connection = default_store().get("twilio-main")
    assert connection.values["auth_token"] == fake_twilio.AUTH_TOKEN
    assert fake_twilio.AUTH_TOKEN not in repr(connection)

    # Another key cannot read them, and says so in words.
    monkeypatch.setenv("VOXFLOW_SECRET_KEY", Fernet.generate_key().decode())
    code, said = run(capsys, "connections", "test", "twilio-main")
    assert code == 1 and "stored with another key" in said and "Traceback" not in said
    code, said = run(capsys, "connections", "remove", "twilio-main")
    assert code == 0 and "Removed" in said
    code, said = run(capsys, "connections", "remove", "twilio-main")
    assert code == 0 and "nothing to remove" in said


def test_a_key_file_is_made_once_and_an_edited_file_is_refused(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VOXFLOW_SECRET_KEY")
    code, said = run(capsys, "connections", "add", "a", "database", "--set", "url=sqlite:///a.db")
    assert code == 0 and "Made a new key" in said
    key_file = project / "config" / "voxflow" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    code, said = run(capsys, "connections", "add", "b", "database", "--set", "url=sqlite:///b.db")
    assert code == 0 and "Made a new key" not in said
    path = project / ".voxflow" / "connections.json"
    document = json.loads(path.read_text())
    entries = document["connections"]
    entries["a"]["secret"], entries["b"]["secret"] = entries["b"]["secret"], entries["a"]["secret"]
    path.write_text(json.dumps(document))
    code, said = run(capsys, "connections", "test", "a")
    assert code == 1 and "another connection's values" in said
    key_file.unlink()
    code, said = run(capsys, "connections", "test", "b")
    assert code == 1 and "there is no key" in said


def test_add_says_what_is_missing_or_misspelt(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, said = run(capsys, "connections", "add", "t", "twilio", "--set", "account_sid=AC1")
    assert code == 1 and "auth_token" in said and "TWILIO_AUTH_TOKEN" in said
    code, said = run(
        capsys, "connections", "add", "t", "twilio", "--set", "auth_tokn=x", "--set", "account_sid=AC1"
    )
    assert code == 1 and "no field 'auth_tokn'" in said and "auth_token" in said
    code, said = run(capsys, "connections", "add", "9bad", "llm", "--set", "api_key=x")
    assert code == 1 and "cannot name a connection" in said


def _add(capsys: pytest.CaptureFixture[str], name: str, kind: str, **values: str) -> None:
    code, said = run(capsys, "connections", "add", name, kind, *[f"--set={k}={v}" for k, v in values.items()])
    assert code == 0, said


def test_carrier_connections_are_tested_against_their_apis(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    telnyx, twilio = fake_telnyx.FakeTelnyx(), fake_twilio.FakeTwilio()
    with serving(telnyx.app()) as telnyx_url, serving(twilio.app()) as twilio_url:
        _add(
            capsys,
            "tx",
            "telnyx",
            api_key=fake_telnyx.API_KEY,
            base_url=telnyx_url + "/v2",
            public_key=TelnyxSigner().public_base64,
        )
        _add(capsys, "tx-bad-key", "telnyx", api_key="KEYwrong", base_url=telnyx_url + "/v2")
        _add(capsys, "tx-no-public", "telnyx", api_key=fake_telnyx.API_KEY, base_url=telnyx_url + "/v2")
        _add(
            capsys,
            "tx-bad-public",
            "telnyx",
            api_key=fake_telnyx.API_KEY,
            base_url=telnyx_url + "/v2",
            public_key="bm90IGEga2V5",
        )
        _add(capsys, "tx-wrong-url", "telnyx", api_key=fake_telnyx.API_KEY, base_url="http://127.0.0.1:9/v2")
        _add(
            capsys,
            "tw",
            "twilio",
            account_sid=fake_twilio.ACCOUNT_SID,
            auth_token=fake_twilio.AUTH_TOKEN,
            base_url=twilio_url,
        )
        _add(
            capsys,
            "tw-bad-token",
            "twilio",
            account_sid=fake_twilio.ACCOUNT_SID,
            auth_token="f" * 32,
            base_url=twilio_url,
        )
        for name, words in [
            ("tx", "ok — Telnyx accepted the API key (balance 300.00 USD); the public key is"),
            ("tx-no-public", "no public key is stored"),
            ("tx-bad-key", "FAILED — Telnyx refused the API key of the connection 'tx-bad-key'"),
            ("tx-bad-public", "FAILED — TELNYX_PUBLIC_KEY is not an Ed25519 public key"),
            ("tx-wrong-url", "FAILED — cannot reach Telnyx at http://127.0.0.1:9/v2"),
            ("tw", "ok — Twilio accepted the credentials (account 'Voxflow test account')"),
            ("tw-bad-token", "FAILED — Twilio refused the Account SID and Auth Token"),
        ]:
            code, said = run(capsys, "connections", "test", name)
            assert words in said, said
            assert code == (1 if "FAILED" in words else 0)
            assert "Traceback" not in said and "f" * 32 not in said
        code, said = run(capsys, "connections", "test")  # all of them
        assert code == 1 and said.count("FAILED") == 4 and said.count(": ok") == 3
    assert ("GET", "/v2/balance") in telnyx.requests
    assert not telnyx.changes() and not twilio.changes()


def test_livekit_database_and_llm_connections(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async def models(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {LLM_KEY}":
            return web.json_response(
                {
                    "error": {
                        "message": "Incorrect API key provided",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                },
                status=401,
            )
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"id": "gpt-4o-mini", "object": "model", "created": 1, "owned_by": "system"},
                    {"id": "llama3", "object": "model", "created": 1, "owned_by": "local"},
                ],
            }
        )

    llm = web.Application()
    llm.router.add_get("/v1/models", models)
    with sqlite3.connect(project / "crm.db") as db:
        db.execute("CREATE TABLE accounts (id INTEGER)")
    with serving(FakeLiveKit().app()) as livekit_url, serving(llm) as llm_url:
        _add(capsys, "lk", "livekit", url=livekit_url, api_key=LK_KEY, api_secret=LK_SECRET)
        _add(
            capsys,
            "lk-bad",
            "livekit",
            url=livekit_url,
            api_key=LK_KEY,
            api_secret="another-secret-of-thirty-two-characters",
        )
        _add(capsys, "lk-away", "livekit", url="http://127.0.0.1:9", api_key=LK_KEY, api_secret=LK_SECRET)
        _add(capsys, "crm", "database", url="sqlite:///crm.db")
        _add(capsys, "gone", "database", url="sqlite:///missing.db")
        _add(capsys, "pg", "database", url="postgresql://voxflow:hunter2secret@127.0.0.1:9/voxflow")
        _add(capsys, "ai", "llm", api_key=LLM_KEY, base_url=llm_url + "/v1", model="llama3")
        _add(capsys, "ai-bad", "llm", api_key="sk-wrong", base_url=llm_url + "/v1")
        _add(capsys, "ai-no-v1", "llm", api_key=LLM_KEY, base_url=llm_url)
        _add(capsys, "ai-model", "llm", api_key=LLM_KEY, base_url=llm_url + "/v1", model="gpt-5-imaginary")
        for name, words in [
            ("lk", "ok — LiveKit accepted the key and secret (0 SIP inbound trunks)"),
            ("lk-bad", "refused the API key and secret of the connection 'lk-bad'"),
            ("lk-away", "cannot reach LiveKit at http://127.0.0.1:9"),
            ("crm", "ok — the SQLite database opens and answers"),
            ("gone", "cannot be opened"),
            ("pg", "PostgreSQL refused the connection 'pg'"),
            ("ai", "ok — the LLM endpoint accepted the key (2 models, llama3 among them)"),
            ("ai-bad", "refused the API key of the connection 'ai-bad' (401)"),
            ("ai-no-v1", "the base_url is probably missing its /v1"),
            ("ai-model", "has no model 'gpt-5-imaginary'"),
        ]:
            code, said = run(capsys, "connections", "test", name)
            assert words in said, said
            assert (code == 0) == (": ok" in said)
            assert "hunter2secret" not in said and "Traceback" not in said


def test_the_server_and_flows_use_connections_by_name(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    public_key = TelnyxSigner().public_base64
    _add(capsys, "tx", "telnyx", api_key=fake_telnyx.API_KEY, public_key=public_key)
    _add(capsys, "tw", "twilio", account_sid=fake_twilio.ACCOUNT_SID, auth_token=fake_twilio.AUTH_TOKEN)
    _add(capsys, "calls", "database", url="sqlite:///records.db")
    _add(capsys, "crm", "database", url="sqlite:///crm.db")
    _add(capsys, "ai", "llm", api_key=LLM_KEY, base_url="http://127.0.0.1:1/v1", model="llama3")
    env = {**os.environ, "VOXFLOW_CONNECTIONS": "tx,tw,ai", "VOXFLOW_RECORDS_CONNECTION": "calls"}
    settings = settings_from_env(env)
    assert settings.telnyx_key is not None
    assert settings.twilio_auth_token == fake_twilio.AUTH_TOKEN
    assert settings.twilio_account_sid == fake_twilio.ACCOUNT_SID
    assert settings.records_url == "sqlite:///records.db"
    # A variable that is set wins over the connection.
    assert settings_from_env({**env, "TWILIO_AUTH_TOKEN": "x" * 32}).twilio_auth_token == "x" * 32
    # Flows: a database_query's `connection: crm` finds the stored connection; the LLM comes
    # from the llm connection named in VOXFLOW_CONNECTIONS.
    config = load_runtime_config(env)
    assert config.database_url("crm") == f"sqlite:///{(project / 'crm.db').resolve()}"
    assert config.llm.api_key == LLM_KEY and config.llm.model == "llama3"
    assert config.llm.base_url == "http://127.0.0.1:1/v1"
    with pytest.raises(Exception, match="connections add nothing database"):
        config.database_url("nothing")
    # Two connections of one kind would set the same variables: refused in words.
    _add(capsys, "tx2", "telnyx", api_key="KEY2")
    with pytest.raises(Exception, match="names two telnyx connections"):
        with_connections({**env, "VOXFLOW_CONNECTIONS": "tx,tx2"})
    with pytest.raises(Exception, match="must name a database connection"):
        with_connections({**env, "VOXFLOW_RECORDS_CONNECTION": "tx"})
    # Without those variables the connections file is not read at all.
    (project / ".voxflow" / "connections.json").write_text("not json")
    assert settings_from_env({"VOXFLOW_FLOWS": "flows"}).twilio_auth_token is None
