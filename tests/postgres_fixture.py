"""pytest plugin: one real PostgreSQL for the session, for the PostgreSQL paths of the call
records and of the ``database_query`` node.

``VOXFLOW_TEST_POSTGRES_URL`` names a server to use (``.ci/run`` starts one from
Debian's postgresql and sets it). Otherwise one is started here from the
PostgreSQL programs on this machine (``initdb``, ``postgres``: run as the
``postgres`` user when the tests run as root), in a temp folder, on a free port.
Where neither is possible the tests that need it are skipped, except in CI
(``CI=true``), where a skipped PostgreSQL test is a failure: CI must run them.

Fixtures: ``postgres_url`` (the server's URL), ``postgres_database`` (a database of
one test's own on it).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from glob import glob
from pathlib import Path

import pytest

from tests.waiting import wait_until_sync

_EXTERNAL = "VOXFLOW_TEST_POSTGRES_URL"


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(
            f"PostgreSQL is needed in CI and {reason} (.ci/run should start one and set {_EXTERNAL})."
        )
    pytest.skip(reason)


def _pg_bin() -> Path | None:
    found = sorted(glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    external = os.environ.get(_EXTERNAL, "").strip()
    if external:
        yield external
        return
    bin_dir = _pg_bin()
    if bin_dir is None:
        _missing("PostgreSQL is not installed here (no initdb)")
    assert bin_dir is not None
    # PostgreSQL refuses to run as root: run it as the 'postgres' user, with
    # no wrapper process in between, so signals reach it.
    as_user: dict[str, str] = {}
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            _missing("the tests run as root and there is no 'postgres' user to run it")
        as_user = {"user": "postgres", "group": "postgres"}
    # Directly under the temp dir: pytest's own folders are private to root.
    folder = Path(tempfile.mkdtemp(prefix="voxflow-pg-"))
    data = folder / "data"
    if as_user:
        shutil.chown(folder, "postgres", "postgres")
    subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "voxflow", "--no-sync"],
        check=True,
        capture_output=True,
        **as_user,
    )  # type: ignore[call-overload]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [
            str(bin_dir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "-k",
            str(folder),
            "-c",
            "fsync=off",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        **as_user,  # type: ignore[call-overload]
    )
    url = f"postgresql://voxflow@127.0.0.1:{port}/postgres"
    try:

        def accepting() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return True
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError(  # noqa: B904 - the server's own words say why
                        f"PostgreSQL did not start: {server.stderr.read()!r}"  # type: ignore[union-attr]
                    )
                return False

        try:
            wait_until_sync(accepting, timeout=30, interval=0.1, what="PostgreSQL to accept connections")
        except AssertionError as problem:
            raise RuntimeError(f"PostgreSQL did not start: {problem}") from None
        yield url
    finally:
        server.send_signal(signal.SIGINT)  # PostgreSQL's "fast" shutdown
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """A database of its own for one test (created here, dropped after it)."""
    import uuid

    import psycopg

    name = f"voxflow_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = postgres_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
