"""The test bed itself: where it caches, how it starts and stops, the caller's G.711."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from engine.core.errors import VoxflowError
from engine.testbed import livekit_server
from engine.testbed.livekit_server import LIVEKIT_SERVER, LiveKitTestBed, binary_path, cache_root
from engine.testbed.sip_caller import through_phone_line, ulaw_decode, ulaw_encode


def test_the_cache_follows_the_environment(tmp_path: Path) -> None:
    assert cache_root({"VOXFLOW_CACHE_DIR": str(tmp_path)}) == tmp_path
    assert cache_root({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "voxflow"
    assert binary_path(LIVEKIT_SERVER, {"VOXFLOW_CACHE_DIR": str(tmp_path)}) == (
        tmp_path / "livekit" / f"livekit-server-{LIVEKIT_SERVER.version}" / "livekit-server"
    )


def test_an_unbuilt_server_says_how_to_build_it(tmp_path: Path) -> None:
    bed = LiveKitTestBed(binary=tmp_path / "missing", workdir=tmp_path)
    with pytest.raises(VoxflowError, match="voxflow livekit build"):
        bed.start()


def test_it_starts_answers_and_stops_cleanly(livekit_binary: str, tmp_path: Path) -> None:
    bed = LiveKitTestBed(webhook_urls=["http://127.0.0.1:9/webhooks/livekit"], workdir=tmp_path)
    endpoints = bed.start()
    config = (tmp_path / "livekit.yaml").read_text()
    assert endpoints.api_key in config and "http://127.0.0.1:9/webhooks/livekit" in config
    with urllib.request.urlopen(endpoints.http_url, timeout=5) as answer:
        assert answer.status == 200
    process = bed._process
    assert process is not None
    bed.stop()
    assert process.poll() is not None
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", bed.port), timeout=1):
        pass


def test_livekit_sip_is_reported_in_the_proxys_words() -> None:
    status = livekit_server.sip_status()
    assert status.startswith("github.com/livekit/sip@")
    assert "cannot be had" in status or "built" in status or "served" in status


def test_g711_mu_law_codes() -> None:
    # ITU-T G.711 µ-law: silence is 0xFF, the loudest positive 0x80, the loudest negative 0x00.
    codes = ulaw_encode(np.array([0, 32767, -32768, 1000, -1000], np.int16))
    assert list(codes[:3]) == [0xFF, 0x80, 0x00]
    assert list(ulaw_decode(codes)[:3]) == [0, 32124, -32124]
    back = ulaw_decode(codes)[3:]
    assert abs(int(back[0]) - 1000) < 40 and abs(int(back[1]) + 1000) < 40
    tone = (np.sin(np.arange(1600) * 2 * np.pi * 440 / 16000) * 10000).astype(np.int16)
    line = through_phone_line(tone)
    assert line.size == tone.size
    assert np.corrcoef(line.astype(float), tone.astype(float))[0, 1] > 0.98
