"""``voxflow numbers`` against local servers speaking Telnyx's and Twilio's REST APIs.

The same story for each carrier, through the command line as a user runs it:
search → buy (twice: once) → assign to a flow (points the number at the
server, writes the trigger file; twice: nothing changes) → list (ok, then
drift when the number is pointed elsewhere behind voxflow's back) → release
(asks for --yes; twice: nothing to release).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine.cli.main import main
from engine.language.project import check_paths
from tests.carriers import fake_telnyx, fake_twilio
from tests.carriers.local_server import serving

FLOWS = Path(__file__).resolve().parent.parent / "server" / "flows"
PUBLIC = "https://voice.example.com"
NUMBER = "+14155550101"


@dataclass
class Account:
    carrier: str
    fake: Any
    voice_url: str

    def pointed_at(self, number: str) -> str | None:
        owned = self.fake.owned_by_number(number)
        if owned is None:
            return None
        if self.carrier == "twilio":
            return owned["voice_url"] or None
        application = self.fake.applications.get(owned["connection_id"] or "")
        return application["voice_url"] if application else None

    def point_elsewhere(self, number: str) -> None:
        owned = self.fake.owned_by_number(number)
        if self.carrier == "twilio":
            owned["voice_url"] = "https://old-ivr.example.net/voice"
        else:
            for application in self.fake.applications.values():
                application["voice_url"] = "https://old-ivr.example.net/texml"


@contextlib.contextmanager
def account(carrier: str, capsys: pytest.CaptureFixture[str]) -> Iterator[Account]:
    fake = fake_telnyx.FakeTelnyx() if carrier == "telnyx" else fake_twilio.FakeTwilio()
    for number in (NUMBER, "+14155550102", "+12125550103"):
        fake.offer(number)
    with serving(fake.app()) as url:
        if carrier == "telnyx":
            values = [f"api_key={fake_telnyx.API_KEY}", f"base_url={url}/v2"]
            voice = f"{PUBLIC}/webhooks/telnyx/texml"
        else:
            values = [
                f"account_sid={fake_twilio.ACCOUNT_SID}",
                f"auth_token={fake_twilio.AUTH_TOKEN}",
                f"base_url={url}",
            ]
            voice = f"{PUBLIC}/webhooks/twilio/voice"
        assert run(capsys, "connections", "add", "acct", carrier, *[f"--set={v}" for v in values])[0] == 0
        yield Account(carrier, fake, voice)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out + err


@pytest.mark.parametrize("carrier", ["telnyx", "twilio"])
def test_a_number_from_search_to_release(
    carrier: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(FLOWS, project / "flows")
    with account(carrier, capsys) as acct:
        code, said = run(capsys, "numbers", "search", "--area-code", "415", "--limit", "5")
        assert code == 0
        assert NUMBER in said and "+14155550102" in said and "+12125550103" not in said
        assert "San Francisco, CA" in said

        code, said = run(capsys, "numbers", "buy", NUMBER)
        assert code == 0 and f"Bought {NUMBER} on {carrier}" in said
        changes = len(acct.fake.changes())
        code, said = run(capsys, "numbers", "buy", "+1 (415) 555-0101")
        assert code == 0 and "already on the" in said
        assert len(acct.fake.changes()) == changes  # nothing bought twice
        assert acct.fake.owned_by_number(NUMBER) is not None

        # Assign: the flow is checked before the account is touched.
        code, said = run(capsys, "numbers", "assign", NUMBER, "greting", "--public-url", PUBLIC)
        assert code == 1 and "no flow named 'greting'" in said and "greeting" in said
        assert len(acct.fake.changes()) == changes
        code, said = run(capsys, "numbers", "assign", NUMBER, "greeting")
        assert code == 1 and "--public-url" in said

        code, said = run(capsys, "numbers", "assign", NUMBER, "greeting", "--public-url", PUBLIC)
        assert code == 0, said
        assert acct.pointed_at(NUMBER) == acct.voice_url
        trigger_file = project / "flows" / "triggers" / "14155550101.yaml"
        assert f"Wrote {Path('flows') / 'triggers' / '14155550101.yaml'}" in said
        text = trigger_file.read_text()
        assert f'number: "{NUMBER}"' in text and "flow: greeting" in text
        assert f"carrier: {carrier}" in text
        checked = check_paths([project / "flows"])
        assert not checked.errors
        assert {(t.number, t.flow, t.carrier) for t in checked.triggers} >= {(NUMBER, "greeting", carrier)}
        if carrier == "twilio":
            owned = acct.fake.owned_by_number(NUMBER)
            assert owned["status_callback"] == f"{PUBLIC}/webhooks/twilio/status"
            assert owned["voice_method"] == "POST"
        else:
            [application] = acct.fake.applications.values()
            assert application["friendly_name"] == "voxflow"
            assert application["status_callback"] == acct.voice_url

        changes = len(acct.fake.changes())
        code, said = run(capsys, "numbers", "assign", NUMBER, "greeting", "--public-url", PUBLIC)
        assert code == 0 and "already sends its calls" in said and "already sends" in said
        assert len(acct.fake.changes()) == changes  # idempotent: nothing changed at the carrier
        assert trigger_file.read_text() == text

        # Another flow: the same trigger file, its flow line changed, the rest kept.
        trigger_file.write_text(text + "greeting_message: Hello there.\n")
        code, said = run(capsys, "numbers", "assign", NUMBER, "survey", "--public-url", PUBLIC)
        assert code == 0 and "Updated" in said
        changed = trigger_file.read_text()
        assert "flow: survey" in changed and "greeting_message: Hello there." in changed
        assert "flow: greeting" not in changed

        code, said = run(capsys, "numbers", "list", "--public-url", PUBLIC, "--check")
        assert code == 0, said
        row = next(line for line in said.splitlines() if line.startswith(NUMBER))
        assert "survey" in row and acct.voice_url in row and row.endswith("ok")
        assert "+15550001000" in said and "trigger only" in said  # the test flows' triggers

        # Someone points the number elsewhere in the carrier's portal: drift.
        acct.point_elsewhere(NUMBER)
        code, said = run(capsys, "numbers", "list", "--public-url", PUBLIC, "--check")
        assert code == 1
        row = next(line for line in said.splitlines() if line.startswith(NUMBER))
        assert "DRIFT" in row and "old-ivr.example.net" in row
        code, said = run(capsys, "numbers", "assign", NUMBER, "survey", "--public-url", PUBLIC)
        assert code == 0 and acct.pointed_at(NUMBER) == acct.voice_url  # assign repairs it

        code, said = run(capsys, "numbers", "release", NUMBER)  # stdin is not a terminal
        assert code == 1 and "--yes" in said
        assert acct.fake.owned_by_number(NUMBER) is not None
        code, said = run(capsys, "numbers", "release", NUMBER, "--yes")
        assert code == 0 and f"Released {NUMBER}" in said and "still names" in said
        assert acct.fake.owned_by_number(NUMBER) is None
        code, said = run(capsys, "numbers", "release", NUMBER, "--yes")
        assert code == 0 and "nothing to release" in said

        code, said = run(capsys, "numbers", "assign", NUMBER, "survey", "--public-url", PUBLIC)
        assert code == 1 and "buy it first" in said


@pytest.mark.parametrize("carrier", ["telnyx", "twilio"])
def test_numbers_say_what_is_wrong_with_the_account(
    carrier: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = fake_telnyx.FakeTelnyx() if carrier == "telnyx" else fake_twilio.FakeTwilio()
    fake.offer(NUMBER)
    with serving(fake.app()) as url:
        if carrier == "telnyx":
            bad = ["api_key=KEYwrong", f"base_url={url}/v2"]
            limited = [f"api_key={fake_telnyx.READ_ONLY_KEY}", f"base_url={url}/v2"]
        else:
            bad = [f"account_sid={fake_twilio.ACCOUNT_SID}", "auth_token=" + "f" * 32, f"base_url={url}"]
            limited = [
                f"account_sid={fake_twilio.SUSPENDED_SID}",
                f"auth_token={fake_twilio.AUTH_TOKEN}",
                f"base_url={url}",
            ]
        for name, values in (("bad", bad), ("limited", limited)):
            assert run(capsys, "connections", "add", name, carrier, *[f"--set={v}" for v in values])[0] == 0
        code, said = run(capsys, "numbers", "search")
        assert code == 1 and "several carrier connections" in said and "--connection" in said
        code, said = run(capsys, "numbers", "search", "--connection", "bad")
        assert code == 1 and "refused" in said and "connection 'bad'" in said
        code, said = run(capsys, "numbers", "buy", NUMBER, "--connection", "limited")
        assert code == 1 and "no permission" in said
        code, said = run(capsys, "numbers", "buy", "+1555", "--connection", "limited")
        assert code == 1 and "is not a phone number" in said
        code, said = run(
            capsys,
            "numbers",
            "buy",
            "+14155550199",
            "--connection",
            "limited",
            "--carrier",
            "telnyx" if carrier == "twilio" else "twilio",
        )
        assert code == 1 and f"is a {carrier} account" in said
    assert NUMBER in fake.inventory  # nothing was bought


def test_numbers_without_any_account(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, said = run(capsys, "numbers", "list")
    assert code == 1 and "voxflow connections add" in said


def test_the_walkthrough_in_the_docs_uses_real_commands() -> None:
    """Every voxflow command of docs/telephony.md's walkthrough parses as written."""
    import shlex

    from engine.cli.main import build_parser

    docs = (Path(__file__).resolve().parents[2] / "docs" / "telephony.md").read_text()
    section = docs.split("## 0.", 1)[1].split("\n## ", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in section.splitlines() if line.startswith("voxflow ")]
    assert len(commands) >= 8
    for command in commands:
        argv = shlex.split(command)[1:]
        args = build_parser(argv).parse_args(argv)  # the parser knows the named command only
        assert args.run is not None, command
