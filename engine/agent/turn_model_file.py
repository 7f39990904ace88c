"""The Smart Turn model file: where it is, how it is fetched, and whether a call uses it.

The model ships inside the ``pipecat-ai`` wheel (1.14.0:
``pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx``). pipecat-ai
itself is not a dependency: it requires numba, openai, Pillow, resampy,
soundfile, loudness and more that voxflow never uses, so
``voxflow models fetch smart-turn`` downloads that one wheel from PyPI
(``pip download --no-deps``), takes the model and the wheel's licence out of
it into ``<cache>/models/smart-turn-v3.2/`` (engine.core.paths: ``~/.cache/
voxflow`` unless moved), and checks the model's SHA-256. A machine with
pipecat-ai 1.14.0 installed already has the file; it is used from there.

Whether calls use it: ``VOXFLOW_TURN_MODEL`` — ``smart-turn`` (on: a clear
error naming the command above when the file is missing), ``off``, or unset:
``voxflow dev`` then uses it when the file is there, ``voxflow agent`` does not.

Licence: BSD-2-Clause, "Copyright (c) 2024–2026, Daily"; the text is kept
beside the model as LICENSE.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.core.errors import VoxflowError
from engine.core.paths import cache_root

if TYPE_CHECKING:
    from engine.agent.turns import TurnModel


@dataclass(frozen=True)
class ModelFile:
    name: str  # what users type: voxflow models fetch <name>
    title: str
    folder: str  # under <cache>/models/
    filename: str
    sha256: str
    size: int
    requirement: str  # the wheel that carries it, for pip download
    distribution: str  # that wheel's distribution name
    member: str  # the file's path inside the wheel
    licence_member: str
    licence: str  # one line, for people


SMART_TURN = ModelFile(
    name="smart-turn",
    title="Smart Turn v3.2 (CPU, int8)",
    folder="smart-turn-v3.2",
    filename="smart-turn-v3.2-cpu.onnx",
    sha256="2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f",
    size=8_679_182,
    requirement="pipecat-ai==1.14.0",
    distribution="pipecat-ai",
    member="pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx",
    licence_member="pipecat_ai-1.14.0.dist-info/licenses/LICENSE",
    licence="BSD-2-Clause, Copyright (c) 2024–2026, Daily",
)
MODELS = {SMART_TURN.name: SMART_TURN}
FETCH_COMMAND = "voxflow models fetch smart-turn"
SETTING = "VOXFLOW_TURN_MODEL"
ON_WORDS = ("smart-turn", "smart_turn", "smartturn", "on", "1", "true", "yes")
OFF_WORDS = ("off", "none", "0", "false", "no")


def cached_path(model: ModelFile = SMART_TURN, env: Mapping[str, str] | None = None) -> Path:
    """Where ``voxflow models fetch`` puts the model."""
    return cache_root(env) / "models" / model.folder / model.filename


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_verified: dict[tuple[Path, int, float], bool] = {}


def _is_model(path: Path, model: ModelFile) -> bool:
    """``path`` is the model, byte for byte (checked once per file version)."""
    try:
        stat = path.stat()
    except OSError:
        return False
    if stat.st_size != model.size:
        return False
    key = (path, stat.st_size, stat.st_mtime)
    if key not in _verified:
        _verified[key] = _sha256(path) == model.sha256
    return _verified[key]


def _installed_path(model: ModelFile) -> Path | None:
    """The file inside an installed pipecat-ai, if it is there (nothing is imported)."""
    from importlib import metadata

    try:
        dist = metadata.distribution(model.distribution)
    except metadata.PackageNotFoundError:
        return None
    return Path(str(dist.locate_file(model.member)))


def find(model: ModelFile = SMART_TURN, env: Mapping[str, str] | None = None) -> Path | None:
    """The model file, checked, from the cache or an installed pipecat-ai; None if neither."""
    for path in (cached_path(model, env), _installed_path(model)):
        if path is not None and _is_model(path, model):
            return path
    return None


def fetch(
    model: ModelFile = SMART_TURN,
    *,
    wheel: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Path:
    """Put the model in the cache (from ``wheel``, else downloaded from PyPI) and return
    its path. The download is checked by pip against PyPI's hash of the wheel, and the
    model against :attr:`ModelFile.sha256`; nothing is written unless both hold."""
    target = cached_path(model, env)
    if _is_model(target, model):
        return target
    with tempfile.TemporaryDirectory(prefix="voxflow-model-") as scratch:
        if wheel is None:
            wheel = _download(model, Path(scratch))
        try:
            with zipfile.ZipFile(wheel) as archive:
                data = archive.read(model.member)
                licence = archive.read(model.licence_member)
        except (OSError, KeyError, zipfile.BadZipFile) as error:
            raise VoxflowError(
                f"{wheel} is not the {model.requirement} wheel that carries {model.filename} "
                f"({error}). Run '{FETCH_COMMAND}' without --wheel to download it from PyPI."
            ) from None
        found = hashlib.sha256(data).hexdigest()
        if found != model.sha256:
            raise VoxflowError(
                f"the {model.filename} in {wheel} is not the expected file (SHA-256 {found}, "
                f"expected {model.sha256}); nothing was saved. Run '{FETCH_COMMAND}' without "
                "--wheel to download it from PyPI."
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        (target.parent / "LICENSE").write_bytes(licence)
        (target.parent / "SOURCE").write_text(
            f"{model.title}: {model.member} from the {model.requirement} wheel on PyPI.\n"
            f"SHA-256 {model.sha256}. Licence: {model.licence} (LICENSE beside this file).\n",
            encoding="utf-8",
        )
        partial = target.with_suffix(".part")
        partial.write_bytes(data)
        os.replace(partial, target)
    return target


def _download(model: ModelFile, into: Path) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(into),
        model.requirement,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise VoxflowError(f"could not run pip to download {model.requirement}: {error}") from None
    wheels = sorted(into.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        said = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise VoxflowError(
            f"pip could not download {model.requirement} from PyPI (it carries {model.filename}):\n  "
            + "\n  ".join(said or ["(pip said nothing)"])
            + "\nCheck the network (or PIP_INDEX_URL), or download the wheel elsewhere and run "
            f"'{FETCH_COMMAND} --wheel FILE.whl'."
        )
    return wheels[0]


def wanted(env: Mapping[str, str] | None = None, *, default: str = "off") -> str:
    """``on``, ``off`` or ``auto`` (on when the file is there), from VOXFLOW_TURN_MODEL;
    ``default`` when it is unset."""
    env = os.environ if env is None else env
    value = env.get(SETTING, "").strip().lower()
    if not value:
        return default
    if value in ON_WORDS:
        return "on"
    if value in OFF_WORDS:
        return "off"
    if value == "auto":
        return "auto"
    raise VoxflowError(
        f"{SETTING}={env.get(SETTING)!r} is not a turn model; use 'smart-turn' (the learned "
        "end-of-turn model), 'auto' (it when fetched) or 'off'."
    )


def missing_message() -> str:
    return (
        f"{SETTING} asks for the Smart Turn end-of-turn model, but it is not on this machine. "
        f"Run '{FETCH_COMMAND}' once (it downloads {SMART_TURN.requirement} from PyPI and keeps "
        f"only the model, {SMART_TURN.size / 1e6:.1f} MB, in {cached_path().parent}), or set "
        f"{SETTING}=off."
    )


def problems(env: Mapping[str, str] | None = None, *, default: str = "off") -> list[str]:
    """What stops the chosen turn model from being used (for a start-up check)."""
    try:
        choice = wanted(env, default=default)
    except VoxflowError as error:
        return [str(error)]
    if choice == "on" and find(env=env) is None:
        return [missing_message()]
    return []


def model_path(env: Mapping[str, str] | None = None, *, default: str = "off") -> Path | None:
    """The model file calls should use, or None when they use none. A VoxflowError naming
    the fetch command when it is asked for and missing."""
    choice = wanted(env, default=default)
    if choice == "off":
        return None
    path = find(env=env)
    if path is None and choice == "on":
        raise VoxflowError(missing_message())
    return path


def load_model(env: Mapping[str, str] | None = None, *, default: str = "off") -> TurnModel | None:
    """The turn model calls should use, loaded once per process (see :func:`model_path`)."""
    path = model_path(env, default=default)
    if path is None:
        return None
    from engine.agent import smart_turn

    return smart_turn.load(path)


def describe(model: TurnModel | None) -> str:
    """The end-of-turn rule in words, for a terminal."""
    if model is None:
        return (
            f"end of turn from silence and expected phrases ('{FETCH_COMMAND}' adds the learned "
            "end-of-turn model for free speech)"
        )
    return f"end of turn from silence, expected phrases and {SMART_TURN.title} for free speech"
