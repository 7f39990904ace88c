"""``voxflow diff OLD NEW``: what changed in the call, through the real CLI, on real files and git."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from engine.authoring.render.mermaid import mermaid_id
from engine.cli.main import main
from tests.test_graph_command import check_mermaid, mermaid_parser, parse_with_mermaid  # noqa: F401

BASE = """\
# yaml-language-server: $schema=../schemas/flow.schema.json
flow: balance
description: Tells a caller the balance of their account.
settings:
  voice: rachel
  language: en-US
  no_input_timeout: 5s
variables:
  caller_name: {default: there}
start: greet
nodes:
  greet:
    type: voice_greet
    message: "Hello ${caller_name}! Welcome to Acme Bank."
    next: menu
  menu:
    type: voice_menu
    prompt: "For your balance, press 1 or say balance. For anything else, press 2 or say agent."
    options:
      - key: "1"
        phrases: [balance, my balance]
        next: tell
      - key: "2"
        phrases: [agent, support, human]
        next: transfer
    no_input:
      - reprompt: "Sorry, I didn't hear anything."
      - next: goodbye
    no_match:
      - reprompt: "Sorry, I didn't catch that."
      - next: transfer
  tell:
    type: voice_speak
    message: "Your balance is fine."
    next: goodbye
  transfer:
    type: voice_transfer
    destination: "+15550001111"
    announce_message: "Connecting you to an agent."
  goodbye:
    type: voice_hangup
    farewell_message: "Thank you for calling. Goodbye!"
"""

# The same call written differently: comments, quoting, flow-style lists, key order.
REFORMATTED = """\
flow: balance   # the id
start: greet
description: "Tells a caller the balance of their account."
variables: {caller_name: {default: "there"}}
settings: {language: en-US, voice: 'rachel', no_input_timeout: 5s}
nodes:
  # first we say hello
  greet: {type: voice_greet, next: menu, message: "Hello ${caller_name}! Welcome to Acme Bank."}
  menu:
    type: voice_menu
    options:
      - {next: tell, key: "1", phrases: ["balance", "my balance"]}
      - key: '2'
        next: transfer
        phrases:
          - agent
          - support
          - human
    prompt: >-
      For your balance, press 1 or say balance.
      For anything else, press 2 or say agent.
    no_match: [{reprompt: "Sorry, I didn't catch that."}, {next: transfer}]
    no_input:
      - reprompt: "Sorry, I didn't hear anything."
      - next: goodbye
  goodbye: {type: voice_hangup, farewell_message: "Thank you for calling. Goodbye!"}
  tell:
    next: goodbye
    type: voice_speak
    message: Your balance is fine.
  transfer:
    announce_message: Connecting you to an agent.
    destination: "+15550001111"
    type: voice_transfer
"""


def edited(*replacements: tuple[str, str]) -> str:
    text = BASE
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    return text


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def run_diff(capsys: pytest.CaptureFixture[str], *argv: str, expect: int = 0) -> tuple[str, str]:
    code = main(["diff", *argv])
    out, err = capsys.readouterr()
    assert code == expect, out + err
    assert "Traceback" not in out + err
    return out, err


def diff_texts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], new: str, *options: str, expect: int = 0
) -> str:
    old_file = write(tmp_path, "old.yaml", BASE)
    new_file = write(tmp_path, "new.yaml", new)
    return run_diff(capsys, old_file, new_file, *options, expect=expect)[0]


def mermaid_block(text: str) -> str:
    start = text.index("```mermaid\n") + len("```mermaid\n")
    return text[start : text.index("```", start)]


ADD_SURVEY = (
    (
        """      - key: "2"
        phrases: [agent, support, human]
        next: transfer
""",
        """      - key: "2"
        phrases: [agent, support, human]
        next: transfer
      - key: "3"
        phrases: [survey]
        next: survey
""",
    ),
    (
        """  transfer:
""",
        """  survey:
    type: voice_listen
    prompt: "How did we do today?"
    max_duration: 90s
    no_input:
      - next: goodbye
    next: goodbye
  transfer:
""",
    ),
)


# ---------------------------------------------------------------------------
# What changed, in words


def test_added_node_and_its_new_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = diff_texts(tmp_path, capsys, edited(*ADD_SURVEY))
    assert "Nodes added\n  + survey (voice_listen)" in out
    assert '      prompt: "How did we do today?"' in out
    assert "      max_duration: 1m30s" in out
    assert "menu: option \"3 / survey\" goes to 'survey' (new)" in out
    assert '+ options[2]: {key: "3", phrases: ["survey"]}' in out
    assert "The call changed (version " in out
    found = check_mermaid(mermaid_block(out))
    assert found.classes[mermaid_id("survey")] == "added"
    assert found.classes[mermaid_id("menu")] == "changed"
    index = found.edges.index((mermaid_id("menu"), "-->", "3 / survey", mermaid_id("survey")))
    assert "#1a7f37" in found.link_styles[index]


def test_removed_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = edited(
        (
            """        phrases: [balance, my balance]
        next: tell""",
            """        phrases: [balance, my balance]
        next: goodbye""",
        ),
        (
            """  tell:
    type: voice_speak
    message: "Your balance is fine."
    next: goodbye
""",
            "",
        ),
    )
    out = diff_texts(tmp_path, capsys, new)
    assert "Nodes removed\n  - tell (voice_speak)" in out
    assert '      message: "Your balance is fine."' in out
    assert "menu: option \"1 / balance / my balance\" now goes to 'goodbye' (was 'tell')" in out
    found = check_mermaid(mermaid_block(out))
    assert found.classes[mermaid_id("tell")] == "removed"
    assert "tell" in found.nodes[mermaid_id("tell")] and "removed" in found.nodes[mermaid_id("tell")]
    old_way = (mermaid_id("menu"), "-.->", "removed: 1 / balance / my balance", mermaid_id("tell"))
    assert "#cf222e" in found.link_styles[found.edges.index(old_way)]


def test_retargeted_exit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = edited(
        (
            """        phrases: [agent, support, human]
        next: transfer""",
            """        phrases: [agent, support, human]
        next: support""",
        ),
        (
            """  goodbye:
""",
            """  support:
    type: voice_transfer
    destination: "+15550002222"
  goodbye:
""",
        ),
    )
    out = diff_texts(tmp_path, capsys, new)
    assert "~ menu: option \"2 / agent / support\" now goes to 'support' (was 'transfer')" in out
    assert '      destination: "+15550002222"' in out
    found = check_mermaid(mermaid_block(out))
    new_way = (mermaid_id("menu"), "-->", "2 / agent / support", mermaid_id("support"))
    assert "#9a6700" in found.link_styles[found.edges.index(new_way)]


def test_changed_prompt_is_shown_in_full(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new_prompt = (
        "For your balance, press 1. To hear about our new savings account, "
        "press 3. For anything else, press 2 or say agent."
    )
    new = edited(
        ("For your balance, press 1 or say balance. For anything else, press 2 or say agent.", new_prompt)
    )
    out = diff_texts(tmp_path, capsys, new)
    assert "Nodes changed\n  ~ menu (voice_menu)\n      prompt:\n" in out
    assert (
        '        old: "For your balance, press 1 or say balance. For anything else, press 2 or say agent."'
    ) in out
    assert f'        new: "{new_prompt}"' in out
    assert "Paths changed" not in out


def test_changed_type(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = diff_texts(tmp_path, capsys, edited(("    type: voice_speak\n", "    type: voice_greet\n")))
    assert "  ~ tell (voice_greet)\n      type: voice_speak → voice_greet" in out


def test_formatting_and_comments_are_no_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = diff_texts(tmp_path, capsys, REFORMATTED, "--exit-code")
    assert "No change in what the call does" in out
    assert "formatting, comments or the order of keys" in out
    assert "```mermaid" not in out
    same = diff_texts(tmp_path, capsys, BASE)
    assert "the two files are identical" in same


def test_exit_code_only_with_the_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = edited(("Goodbye!", "Bye now!"))
    diff_texts(tmp_path, capsys, new)
    out = diff_texts(tmp_path, capsys, new, "--exit-code", "--no-diagram", expect=1)
    assert "Bye now!" in out and "```mermaid" not in out


def test_flow_settings_and_variables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = edited(
        ("voice: rachel", "voice: bob"),
        ("no_input_timeout: 5s", "no_input_timeout: 8s"),
        ("{default: there}", "{default: friend}\n  mood: {default: happy}"),
        ("start: greet", "start: intro"),
        ("nodes:\n", "nodes:\n  intro:\n    type: voice_speak\n    message: Hi.\n    next: greet\n"),
    )
    out = diff_texts(tmp_path, capsys, new)
    assert 'settings.voice: "rachel" → "bob" (for every node that does not set its own)' in out
    assert "settings.no_input_timeout: 5s → 8s" in out
    assert 'variable caller_name now starts as "friend" (was "there")' in out
    assert 'variable mood added (starts as "happy")' in out
    assert "the call now starts at 'intro' (was 'greet')" in out
    # A flow setting is reported once, not again for every node that inherits it.
    assert "Nodes changed" not in out
    found = check_mermaid(mermaid_block(out))
    assert "#9a6700" in found.link_styles[0]  # the start arrow, marked as changed


def test_inserted_option_is_one_addition(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = edited(
        (
            """    options:
      - key: "1"
""",
            """    options:
      - key: "0"
        phrases: [operator]
        next: transfer
      - key: "1"
""",
        )
    )
    out = diff_texts(tmp_path, capsys, new)
    assert '+ options[0]: {key: "0", phrases: ["operator"]}' in out
    assert "menu: option \"0 / operator\" goes to 'transfer' (new)" in out
    assert "options[1]" not in out and "options[2]" not in out
    assert "now goes to" not in out


def test_colour_on_a_terminal_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    new = edited(("Goodbye!", "Bye now!"))
    assert "\x1b[" not in diff_texts(tmp_path, capsys, new)
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert "\x1b[" in diff_texts(tmp_path, capsys, new)
    assert "\x1b[" not in diff_texts(tmp_path, capsys, new, "--format", "markdown")


# ---------------------------------------------------------------------------
# Markdown and JSON


def test_markdown_for_a_pull_request(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mermaid_parser: Path | None,  # noqa: F811 - the fixture imported above
) -> None:
    new = edited(
        *ADD_SURVEY,
        (
            "Hello ${caller_name}! Welcome to Acme Bank.",
            "Hello ${caller_name}! Welcome to Acme Bank, the bank that `listens`.",
        ),
    )
    out = diff_texts(tmp_path, capsys, new, "--format", "markdown")
    assert out.startswith("### Call flow `balance`: changed\n")
    assert "**Nodes added**\n\n- `survey` (voice_listen) added" in out
    assert "```diff\n    - Hello ${caller_name}! Welcome to Acme Bank.\n" in out
    assert "    + Hello ${caller_name}! Welcome to Acme Bank, the bank that `listens`.\n" in out
    assert '- `menu`: option "3 / survey" goes to `survey` (new)' in out
    block = mermaid_block(out)
    check_mermaid(block)
    diagram = tmp_path / "diff.mmd"
    diagram.write_text(block, encoding="utf-8")
    parse_with_mermaid(mermaid_parser, [diagram])


def test_json_for_tools(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = edited(
        *ADD_SURVEY, ('        next: transfer\n      - key: "3"', '        next: goodbye\n      - key: "3"')
    )
    report = json.loads(diff_texts(tmp_path, capsys, new, "--format", "json"))
    assert report["call_changed"] is True
    assert report["old"]["version"] != report["new"]["version"]
    assert [n["id"] for n in report["nodes"]["added"]] == ["survey"]
    changes = {(e["node"], e["change"]) for e in report["exits"]}
    assert ("menu", "added") in changes and ("menu", "retargeted") in changes
    retargeted = next(e for e in report["exits"] if e["change"] == "retargeted")
    assert retargeted["old"]["target"] == "transfer" and retargeted["new"]["target"] == "goodbye"
    check_mermaid(report["mermaid"])
    unchanged = json.loads(diff_texts(tmp_path, capsys, REFORMATTED, "--format", "json"))
    assert unchanged["call_changed"] is False and "mermaid" not in unchanged


# ---------------------------------------------------------------------------
# Problems with a side


def test_a_side_with_errors_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, "good.yaml", BASE)
    broken = write(tmp_path, "broken.yaml", BASE.replace("        next: tell", "        next: tel"))
    _, err = run_diff(capsys, good, broken, expect=1)
    assert "the new side" in err and "broken.yaml" in err and "no node named 'tel'" in err
    bad_yaml = write(tmp_path, "bad.yaml", "flow: x\nnodes:\n  a: [unclosed\n")
    _, err = run_diff(capsys, bad_yaml, good, expect=1)
    assert "the old side" in err and "bad.yaml" in err


def test_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, "good.yaml", BASE)
    _, err = run_diff(capsys, good, str(tmp_path / "nope.yaml"), expect=1)
    assert "the new side" in err and "no such file" in err


# ---------------------------------------------------------------------------
# REV:path from a real git repository

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        [
            "git",
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
            *args,
        ],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with flow.yaml (BASE) committed, then changed in the work tree."""
    root = tmp_path / "repo"
    (root / "flows").mkdir(parents=True)
    git(root, "init", "-q")
    (root / "flow.yaml").write_text(BASE, encoding="utf-8")
    (root / "flows" / "balance.yaml").write_text(BASE, encoding="utf-8")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    changed = edited(("Goodbye!", "Bye now!"))
    (root / "flow.yaml").write_text(changed, encoding="utf-8")
    (root / "flows" / "balance.yaml").write_text(changed, encoding="utf-8")
    monkeypatch.chdir(root)
    return root


@needs_git
def test_rev_path_against_the_work_tree(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = run_diff(capsys, "HEAD:flow.yaml", "flow.yaml")
    assert "old: HEAD:flow.yaml" in out
    assert ('farewell_message: "Thank you for calling. Goodbye!" → "Thank you for calling. Bye now!"') in out
    out, _ = run_diff(capsys, "HEAD:flow.yaml", "HEAD:flow.yaml")
    assert "the two files are identical" in out


@needs_git
def test_rev_path_from_a_subfolder(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo / "flows")
    for old in ("HEAD:flows/balance.yaml", "HEAD:balance.yaml", "HEAD:./balance.yaml"):
        out, _ = run_diff(capsys, old, "balance.yaml")
        assert "Bye now!" in out, old


@needs_git
@pytest.mark.parametrize(
    "spec, words",
    [
        ("HEAD~5:flow.yaml", "git does not know the revision 'HEAD~5'"),
        ("no-such-branch:flow.yaml", "git does not know the revision 'no-such-branch'"),
        ("HEAD:nope.yaml", "'nope.yaml' does not exist in HEAD"),
        ("HEAD:flows", "is a folder"),
        ("HEAD:", "names no file"),
    ],
)
def test_bad_rev_or_path(repo: Path, capsys: pytest.CaptureFixture[str], spec: str, words: str) -> None:
    _, err = run_diff(capsys, spec, "flow.yaml", expect=1)
    assert f"the old side ({spec})" in err and words in err


@needs_git
def test_rev_path_outside_a_repository(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "flow.yaml").write_text(BASE, encoding="utf-8")
    monkeypatch.chdir(outside)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    _, err = run_diff(capsys, "HEAD:flow.yaml", "flow.yaml", expect=1)
    assert "not inside a git repository" in err


def test_a_flow_with_a_subflow_shows_the_version_validate_shows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A flow's version includes its subflows': diff compiles each side with the files beside it."""
    write(
        tmp_path,
        "survey.yaml",
        "flow: survey\nstart: a\nnodes:\n  a: {type: set, values: {score: 5}, next: b}\n  b: {type: end}\n",
    )
    main_flow = write(
        tmp_path,
        "main.yaml",
        "flow: main\nstart: a\nnodes:\n"
        "  a: {type: subflow, flow: survey, outputs: {score: score}, next: b}\n"
        "  b: {type: voice_hangup, farewell_message: 'Score ${score}'}\n",
    )
    assert main(["validate", "--format", "json", str(tmp_path)]) == 0
    validated = json.loads(capsys.readouterr().out)["flows"]["main"]
    report = json.loads(run_diff(capsys, main_flow, main_flow, "--format", "json")[0])
    assert report["old"]["version"] == report["new"]["version"] == validated
