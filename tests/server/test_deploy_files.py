"""docker-compose.yml describes the production topology and runs commands that exist."""

from __future__ import annotations

from pathlib import Path

import yaml

from engine.cli.main import COMMANDS

ROOT = Path(__file__).resolve().parents[2]


def test_compose_has_the_production_topology() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "temporal", "redis", "livekit", "livekit-sip", "voxflow-server",
            "voxflow-worker", "voxflow-agent", "proxy"} <= set(services)
    assert services["voxflow-server"]["deploy"]["replicas"] >= 2
    assert services["temporal"]["environment"]["DB"] == "postgres12"
    for name in ("voxflow-server", "voxflow-worker"):
        command = services[name]["command"][0]
        assert command in COMMANDS, command
        env = services[name]["environment"]
        assert env["VOXFLOW_REDIS_URL"].startswith("redis://")
        assert env["VOXFLOW_RECORDS_URL"].startswith("postgresql://")
    assert (ROOT / "deploy" / "Caddyfile").is_file() and (ROOT / "Dockerfile").is_file()


def test_livekit_sends_its_webhooks_to_the_server_signed_with_the_servers_key() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    livekit = yaml.safe_load((ROOT / "deploy" / "livekit.yaml").read_text())
    server_env = compose["services"]["voxflow-server"]["environment"]
    # The key LiveKit signs with is the one the server checks with (compose's default).
    assert server_env["LIVEKIT_API_KEY"] == "${LIVEKIT_API_KEY:-voxflow}"
    assert livekit["webhook"]["api_key"] == "voxflow"
    assert "LIVEKIT_API_SECRET" in server_env
    assert livekit["webhook"]["urls"] == ["http://voxflow-server:8080/webhooks/livekit"]
    assert compose["services"]["voxflow-server"]["command"][-1] == "8080"
