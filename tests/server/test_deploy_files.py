"""docker-compose.yml describes the production topology and runs commands that exist."""

from __future__ import annotations

from pathlib import Path

import yaml

from engine.cli.main import COMMANDS

ROOT = Path(__file__).resolve().parents[2]


def test_compose_has_the_production_topology() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {
        "postgres",
        "temporal",
        "redis",
        "livekit",
        "livekit-sip",
        "voxflow-server",
        "voxflow-worker",
        "voxflow-agent",
        "proxy",
    } <= set(services)
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
    server_env = compose["services"]["voxflow-server"]["environment"]
    livekit_env = compose["services"]["livekit"]["environment"]
    sip_config = yaml.safe_load(compose["services"]["livekit-sip"]["environment"]["SIP_CONFIG_BODY"])
    # Compose fills in ${...} before LiveKit reads its config: read it as LiveKit would.
    key, secret = "key-from-env", "secret-from-env-at-least-32-characters"
    livekit = yaml.safe_load(
        livekit_env["LIVEKIT_CONFIG"]
        .replace("${LIVEKIT_API_KEY:-voxflow}", key)
        .replace("${LIVEKIT_API_SECRET}", secret)
    )
    # LiveKit signs its webhooks with the key the server checks them with, and knows only
    # the key pair of .env, which the SIP service and the voxflow services use too.
    assert server_env["LIVEKIT_API_KEY"] == "${LIVEKIT_API_KEY:-voxflow}"
    assert server_env["LIVEKIT_API_SECRET"].startswith("${LIVEKIT_API_SECRET")
    assert livekit["keys"] == {key: secret}
    assert livekit["webhook"]["api_key"] == key
    assert livekit["webhook"]["urls"] == ["http://voxflow-server:8080/webhooks/livekit"]
    assert sip_config["api_key"] == "${LIVEKIT_API_KEY:-voxflow}"
    assert compose["services"]["voxflow-server"]["command"][-1] == "8080"
    assert "volumes" not in compose["services"]["livekit"]  # no config file to keep in step
