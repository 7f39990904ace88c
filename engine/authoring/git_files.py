"""Reading a file as it was in a git revision: ``HEAD:flows/balance.yaml``.

Used by ``voxflow diff`` so a reviewer can compare a flow with an older
version of itself without checking anything out. We run the ``git`` program
(in the current folder's repository) rather than reading ``.git`` ourselves,
so every kind of revision git understands works: ``HEAD~1``, ``main``,
``origin/main``, a tag, a commit hash.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from engine.core.errors import VoxflowError


@dataclass(frozen=True)
class Source:
    """The text of one side of a comparison, and the name to show for it."""

    text: str
    name: str


def split_spec(spec: str) -> tuple[str, str] | None:
    """``'REV:path'`` → ``(rev, path)``; None when ``spec`` is a plain file path.

    A file that exists wins, so a file whose name contains ':' still works, and
    so does a Windows path like ``C:\\flows\\a.yaml``.
    """
    if ":" not in spec or Path(spec).exists():
        return None
    rev, _, path = spec.partition(":")
    if len(rev) == 1 and rev.isalpha() and path.startswith(("\\", "/")):
        return None  # a drive letter
    return rev, path


def read_source(spec: str, cwd: str | Path | None = None) -> Source:
    """A file's text, from the disk or, for ``REV:path``, from git."""
    parts = split_spec(spec)
    if parts is None:
        return Source(read_disk_file(Path(cwd or ".") / spec, spec), spec)
    rev, path = parts
    return Source(read_git_file(rev, path, cwd), spec)


def read_disk_file(path: Path, shown: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VoxflowError(
            f"{shown}: no such file. Give a flow file, or REV:path for a version in git "
            "(for example HEAD:flows/account-balance.yaml)."
        ) from None
    except IsADirectoryError:
        raise VoxflowError(f"{shown} is a folder; give one flow file.") from None
    except UnicodeDecodeError:
        raise VoxflowError(f"{shown} is not UTF-8 text. Save it as UTF-8 in your editor.") from None
    except OSError as exc:
        raise VoxflowError(f"{shown}: cannot read this file ({exc.strerror}).") from None


def read_git_file(rev: str, path: str, cwd: str | Path | None = None) -> str:
    """The text of ``path`` at ``rev`` (an empty rev means the staged version, as in git).

    ``path`` is taken from the top of the repository, as git does; when it is
    not there we also try it from the current folder, which is what people
    type when they stand in a subfolder.
    """
    spec = f"{rev}:{path}"
    if not path:
        raise VoxflowError(
            f"'{spec}' names no file: put the file's path after the ':', "
            f"for example {rev or 'HEAD'}:flows/account-balance.yaml."
        )
    _require_repository(cwd, spec)
    if rev:
        _require_revision(rev, cwd)
    found = _object_for(rev, path, cwd)
    if found is None:
        where = f"in {rev}" if rev else "among the staged files"
        raise VoxflowError(
            f"'{path}' does not exist {where}. Git paths start at the top of the repository "
            f"(see 'git ls-tree -r --name-only {rev or 'HEAD'}'); check the spelling and "
            "whether the file had another name then."
        )
    kind = _git(["cat-file", "-t", found], cwd).stdout.decode().strip()
    if kind != "blob":
        raise VoxflowError(f"'{spec}' is a folder in git; give one flow file.")
    data = _git(["cat-file", "blob", found], cwd).stdout
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise VoxflowError(f"'{spec}' is not UTF-8 text.") from None


def _require_repository(cwd: str | Path | None, spec: str) -> None:
    if _git(["rev-parse", "--git-dir"], cwd, check=False).returncode != 0:
        raise VoxflowError(
            f"'{spec}' asks git for an old version, but this folder is not inside a git "
            "repository. Run voxflow diff inside the repository, or compare two files."
        )


def _require_revision(rev: str, cwd: str | Path | None) -> None:
    probe = _git(
        ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"], cwd, check=False
    )
    if probe.returncode != 0:
        raise VoxflowError(
            f"git does not know the revision '{rev}'. Use a commit, branch or tag that "
            "exists in this repository ('git log --oneline' lists the commits)."
        )


def _object_for(rev: str, path: str, cwd: str | Path | None) -> str | None:
    """``rev:path`` as git names the object, trying the path from the top, then from here."""
    candidates = [f"{rev}:{path}"]
    prefix = _git(["rev-parse", "--show-prefix"], cwd, check=False).stdout.decode().strip()
    if prefix and not path.startswith(("./", "../", "/")):
        candidates.append(f"{rev}:{PurePosixPath(prefix, path)}")
    for candidate in candidates:
        if _git(["cat-file", "-e", candidate], cwd, check=False).returncode == 0:
            return candidate
    return None


def _git(args: list[str], cwd: str | Path | None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    try:
        result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError:
        raise VoxflowError(
            "reading REV:path needs the git program, and it is not installed (or not on PATH)."
        ) from None
    if check and result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip() or "no message"
        raise VoxflowError(f"git failed: {message}")
    return result


def sibling_sources(spec: str, cwd: str | Path | None = None) -> dict[str, str]:
    """The other YAML files beside ``spec`` (its folder on disk, or at that revision in git).

    A flow's version includes the versions of the subflows it calls, which live
    in its folder; ``voxflow diff`` compiles each side with them so that it shows
    the same version as ``validate`` and the monitor. Files that cannot be read
    are left out; the staged version (``:path``) has no siblings here.
    """
    parts = split_spec(spec)
    texts: dict[str, str] = {}
    if parts is None:
        own = Path(cwd or ".") / spec
        for path in sorted(own.parent.glob("*.y*ml")):
            if path.name != own.name and path.suffix in (".yaml", ".yml") and path.is_file():
                try:
                    texts[path.name] = path.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    continue
        return texts
    rev, in_repo = parts
    found = _object_for(rev, in_repo, cwd) if rev else None
    if found is None:
        return texts
    folder = found.rsplit("/", 1)[0] if "/" in found else f"{rev}:"
    listing = _git(["ls-tree", "--name-only", folder], cwd, check=False)
    own_name = found.rsplit("/", 1)[-1].split(":")[-1]
    for name in listing.stdout.decode(errors="replace").splitlines():
        if name == own_name or not name.endswith((".yaml", ".yml")):
            continue
        blob = _git(
            ["cat-file", "blob", f"{folder}/{name}" if "/" in found else f"{rev}:{name}"], cwd, check=False
        )
        if blob.returncode == 0:
            try:
                texts[name] = blob.stdout.decode("utf-8")
            except UnicodeDecodeError:
                continue
    return texts
