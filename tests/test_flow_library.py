"""Hot reload of a flows folder: valid, invalid and deleted files."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

from engine.flow_library import FlowLibrary, ReloadReport

ROOT = Path(__file__).resolve().parent.parent


def copy_examples(tmp_path: Path) -> Path:
    folder = tmp_path / "flows"
    shutil.copytree(ROOT / "flows", folder, ignore=shutil.ignore_patterns("tests"))
    return folder


def test_initial_load_serves_every_flow_and_trigger(tmp_path: Path) -> None:
    library = FlowLibrary(copy_examples(tmp_path))
    report = library.reload()
    assert set(report.added) == {"account-balance", "ivr-menu", "voicemail",
                                 "transfer-to-human", "refund-approval"}
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
    reports: list[ReloadReport] = []

    async def scenario() -> float:
        stop = asyncio.Event()
        updated = asyncio.Event()

        def on_reload(report: ReloadReport) -> None:
            reports.append(report)
            if "voicemail" in report.updated:
                updated.set()

        watcher = asyncio.create_task(library.watch(on_reload, stop=stop))
        await asyncio.sleep(0.3)  # let the watcher start
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
