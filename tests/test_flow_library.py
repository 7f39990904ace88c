"""Hot reload of a flows folder: valid, invalid and deleted files."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

from engine.server.flow_library import FlowLibrary, ReloadReport
from tests.server.support import until_watching
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent


def copy_examples(tmp_path: Path) -> Path:
    folder = tmp_path / "flows"
    shutil.copytree(ROOT / "flows", folder, ignore=shutil.ignore_patterns("tests"))
    return folder


def test_initial_load_serves_every_flow_and_trigger(tmp_path: Path) -> None:
    library = FlowLibrary(copy_examples(tmp_path))
    report = library.reload()
    assert set(report.added) == {
        "account-balance",
        "ivr-menu",
        "voicemail",
        "transfer-to-human",
        "refund-approval",
    }
    assert library.trigger_for("+15551230000").flow == "ivr-menu"  # type: ignore[union-attr]
    assert report.errors == []


def test_valid_change_serves_the_new_version(tmp_path: Path) -> None:
    folder = copy_examples(tmp_path)
    library = FlowLibrary(folder)
    library.reload()
    before = library.flow("voicemail")
    path = folder / "voicemail.yaml"
    path.write_text(path.read_text().replace("We didn't get a message.", "No message."))
    report = library.reload()
    assert set(report.updated) == {"voicemail", "ivr-menu"}  # ivr-menu embeds voicemail
    after = library.flow("voicemail")
    assert before is not None and after is not None
    assert after.version != before.version
    # a call that started before holds `before`, which is unchanged
    assert before.nodes["nothing_recorded"].config["message"] == "We didn't get a message."


def test_invalid_change_keeps_the_previous_version_and_reports(tmp_path: Path) -> None:
    folder = copy_examples(tmp_path)
    library = FlowLibrary(folder)
    library.reload()
    before = library.flow("voicemail")
    path = folder / "voicemail.yaml"
    path.write_text(path.read_text().replace("next: done\n", "next: dnoe\n", 1))
    report = library.reload()
    # ivr-menu calls voicemail as a subflow, so it keeps its version too
    assert set(report.kept) == {"voicemail", "ivr-menu"}
    assert library.flow("voicemail") is before
    assert any("no node named 'dnoe'" in d.message for d in report.errors)
    assert str(path) in library.problems
    # fixing it serves the fix
    path.write_text(path.read_text().replace("next: dnoe\n", "next: done\n"))
    report = library.reload()
    assert library.flow("voicemail") is not None and report.errors == []


def test_broken_yaml_keeps_flow_and_trigger(tmp_path: Path) -> None:
    folder = copy_examples(tmp_path)
    library = FlowLibrary(folder)
    library.reload()
    trigger = folder / "triggers" / "balance-line.yaml"
    trigger.write_text(trigger.read_text() + "  bad: [\n")
    report = library.reload()
    assert report.errors
    assert library.trigger_for("+15551230001") is not None


def test_deleted_file_stops_new_calls(tmp_path: Path) -> None:
    folder = copy_examples(tmp_path)
    library = FlowLibrary(folder)
    library.reload()
    (folder / "refund-approval.yaml").unlink()
    (folder / "triggers" / "refunds.yaml").unlink()
    report = library.reload()
    assert report.removed == ("refund-approval",)
    assert library.flow("refund-approval") is None
    assert library.trigger_for("+15551230002") is None


def test_watch_reloads_soon_after_a_save(tmp_path: Path) -> None:
    folder = copy_examples(tmp_path)
    library = FlowLibrary(folder)
    library.reload()

    async def scenario() -> float:
        stop = asyncio.Event()
        updated = asyncio.Event()

        def on_reload(report: ReloadReport) -> None:
            if "voicemail" in report.updated:
                updated.set()

        watcher = asyncio.create_task(library.watch(on_reload, stop=stop))
        await until_watching(library)
        path = folder / "voicemail.yaml"
        written = time.perf_counter()
        path.write_text(path.read_text().replace("Thank you.", "Thanks!"))
        await asyncio.wait_for(updated.wait(), timeout=10)
        elapsed = time.perf_counter() - written
        stop.set()
        await asyncio.wait_for(watcher, timeout=10)
        return elapsed

    elapsed = asyncio.run(scenario())
    assert library.flow("voicemail").nodes["thanks"].config["message"].startswith("Thanks!")  # type: ignore[union-attr]
    assert elapsed < 5  # generous: timing belongs to bench/, this only proves it happens


HOSTILE_FILES = {
    # Each of these used to raise out of the checks (RecursionError, ValueError, TypeError),
    # which killed the hot-reload watcher: no later file was ever loaded.
    "deep.yaml": 'flow: deep\nstart: a\nnodes:\n  a: {type: voice_speak, message: "${'
    + "+".join(["1"] * 3000)
    + '}", next: b}\n  b: {type: voice_hangup}\n',
    "brackets.yaml": 'flow: brackets\nstart: a\nnodes:\n  a: {type: voice_speak, message: "${'
    + "(" * 200
    + "1"
    + ")" * 200
    + '}", next: b}\n  b: {type: voice_hangup}\n',
    "digits.yaml": "flow: digits\nstart: a\nvariables:\n  n: {default: " + "9" * 5000 + "}\n"
    "nodes:\n  a: {type: end}\n",
    "phrases.yaml": "flow: phrases\nstart: a\nnodes:\n  a:\n    type: voice_menu\n"
    "    prompt: Hi\n    options: [{key: '1', phrases: 2, next: b}]\n  b: {type: end}\n",
    "huge.yaml": "flow: huge\n# " + "x" * 1_100_000 + "\n",
}


def test_hostile_files_are_reported_and_every_other_file_keeps_loading(tmp_path: Path) -> None:
    import os

    folder = copy_examples(tmp_path)
    for name, text in HOSTILE_FILES.items():
        (folder / name).write_text(text, encoding="utf-8")
    os.mkfifo(folder / "pipe.yaml")  # reading it would block the watcher for ever
    library = FlowLibrary(folder)
    first = library.reload()  # what `voxflow serve` does before it starts serving
    assert "voicemail" in library.flows and "ivr-menu" in library.flows
    broken = {Path(d.file).name for d in first.errors}
    assert set(HOSTILE_FILES) <= broken, first.errors
    assert not [d for d in first.errors if d.code == "internal"], first.errors

    reports: list[ReloadReport] = []

    async def scenario() -> None:
        stop = asyncio.Event()
        loaded = asyncio.Event()

        def on_reload(report: ReloadReport) -> None:
            reports.append(report)
            if "late" in report.added:
                loaded.set()

        watcher = asyncio.create_task(library.watch(on_reload, stop=stop))
        await until_watching(library)
        (folder / "worse.yaml").write_text(HOSTILE_FILES["deep.yaml"].replace("deep", "worse"))
        # The watcher reloads with the hostile file (and reports it) before the next one comes.
        await wait_until(
            lambda: any(Path(d.file).name == "worse.yaml" for r in reports for d in r.errors),
            what="the watcher to report worse.yaml",
        )
        late = (folder / "voicemail.yaml").read_text().replace("flow: voicemail", "flow: late")
        (folder / "late.yaml").write_text(late)
        await asyncio.wait_for(loaded.wait(), timeout=10)
        stop.set()
        await asyncio.wait_for(watcher, timeout=10)

    asyncio.run(scenario())
    assert "late" in library.flows and "voicemail" in library.flows
