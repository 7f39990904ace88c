"""Runtime configuration: environment variables, voxflow.yaml, and plain errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core.errors import VoxflowError
from engine.runtime.config import DEFAULT_LLM_BASE_URL, DEFAULT_LLM_MODEL, load_runtime_config


def test_defaults_with_an_empty_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no voxflow.yaml here
    config = load_runtime_config(environ={})
    assert config.databases == {}
    assert (config.llm.base_url, config.llm.model, config.llm.api_key) == (
        DEFAULT_LLM_BASE_URL,
        DEFAULT_LLM_MODEL,
        None,
    )


def test_environment_variables(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_runtime_config(
        environ={
            "VOXFLOW_DATABASE_ACCOUNTS": "sqlite:///data/accounts.db",
            "VOXFLOW_DATABASE_CRM": "postgresql://app:secret@db:5432/crm",
            "VOXFLOW_DATABASE_MEMO": "sqlite:///:memory:",
            "OPENAI_API_KEY": "sk-openai",
            "OPENAI_BASE_URL": "https://example.test/v1/",
            "VOXFLOW_LLM_MODEL": "llama3",
        }
    )
    assert config.databases == {
        "accounts": f"sqlite:///{tmp_path.resolve() / 'data' / 'accounts.db'}",
        "crm": "postgresql://app:secret@db:5432/crm",
        "memo": "sqlite:///:memory:",
    }
    assert (config.llm.base_url, config.llm.model, config.llm.api_key) == (
        "https://example.test/v1",
        "llama3",
        "sk-openai",
    )
    # voxflow's own variables win over OpenAI's.
    config = load_runtime_config(
        environ={
            "OPENAI_API_KEY": "sk-openai",
            "VOXFLOW_LLM_API_KEY": "sk-voxflow",
            "VOXFLOW_LLM_BASE_URL": "http://localhost:8080/v1",
        }
    )
    assert (config.llm.api_key, config.llm.base_url) == ("sk-voxflow", "http://localhost:8080/v1")


def test_config_file_with_environment_overrides(tmp_path: Path) -> None:
    config_file = tmp_path / "conf" / "voxflow.yaml"
    config_file.parent.mkdir()
    config_file.write_text(
        "databases:\n"
        "  accounts: sqlite:///accounts.db\n"
        "  crm: postgresql://localhost/crm\n"
        "llm:\n"
        "  base_url: http://llm.local/v1\n"
        "  model: mistral\n"
        "  api_key_env: MY_LLM_KEY\n",
        encoding="utf-8",
    )
    config = load_runtime_config(
        environ={
            "MY_LLM_KEY": "k-1",
            "VOXFLOW_DATABASE_CRM": "postgresql://prod/crm",
            "VOXFLOW_CONFIG": str(config_file),
        },
    )
    # A relative SQLite path is relative to the config file's folder.
    assert config.databases["accounts"] == f"sqlite:///{(config_file.parent / 'accounts.db').resolve()}"
    assert config.databases["crm"] == "postgresql://prod/crm"
    assert (config.llm.base_url, config.llm.model, config.llm.api_key) == (
        "http://llm.local/v1",
        "mistral",
        "k-1",
    )
    assert str(config_file) in config.source


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("databases: [a, b]\n", "'databases' must map connection names to URLs"),
        ("databses: {}\n", "unknown section(s) databses"),
        ("databases:\n  crm: mysql://x/y\n", "should start with sqlite:/// or postgresql://, not 'mysql'"),
        ("databases:\n  crm: sqlite://crm.db\n", "write SQLite URLs with three slashes"),
        ("databases: {a: 1\n", "this is not valid YAML"),
    ],
)
def test_config_file_mistakes_in_plain_words(tmp_path: Path, text: str, message: str) -> None:
    config_file = tmp_path / "voxflow.yaml"
    config_file.write_text(text, encoding="utf-8")
    with pytest.raises(VoxflowError) as caught:
        load_runtime_config(environ={}, config_file=config_file)
    assert message in caught.value.message


def test_missing_config_file_named_by_the_environment(tmp_path: Path) -> None:
    with pytest.raises(VoxflowError, match="VOXFLOW_CONFIG names .* which does not exist"):
        load_runtime_config(environ={"VOXFLOW_CONFIG": str(tmp_path / "missing.yaml")})
