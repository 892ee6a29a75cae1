"""Settings layering, validation messages, and the generated reference docs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tollhouse.config_docs import render
from tollhouse.settings import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for k in list(__import__("os").environ):
        if k.startswith("TOLLHOUSE_"):
            monkeypatch.delenv(k)


def write(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_defaults() -> None:
    s = load_settings()
    assert s.server.host == "127.0.0.1"
    assert s.server.port == 8000
    names = [m.name for m in s.all_models()]
    assert names == ["local", "local-embed"]


def test_layers_yaml_then_dotenv_then_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(tmp_path / "c.yaml", {"server": {"port": 9001, "workers": 2}, "logging": {"level": "debug"}})
    assert load_settings(str(cfg)).server.port == 9001
    (tmp_path / ".env").write_text("TOLLHOUSE_SERVER__PORT=9002\n")
    s = load_settings(str(cfg))
    assert (s.server.port, s.server.workers, s.logging.level) == (9002, 2, "DEBUG")
    monkeypatch.setenv("TOLLHOUSE_SERVER__PORT", "9003")
    assert load_settings(str(cfg)).server.port == 9003


def test_config_from_env_var_and_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "tollhouse.yaml", {"server": {"port": 9100}})
    assert load_settings().server.port == 9100
    other = write(tmp_path / "other.yaml", {"server": {"port": 9200}})
    monkeypatch.setenv("TOLLHOUSE_CONFIG", str(other))
    assert load_settings().server.port == 9200


def test_bad_value_names_field_and_value(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", {"server": {"port": "eighty"}})
    with pytest.raises(ConfigError) as e:
        load_settings(str(cfg))
    assert "server.port" in str(e.value)
    assert "'eighty'" in str(e.value)


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", {"server": {"prot": 1}})
    with pytest.raises(ConfigError, match=r"server\.prot"):
        load_settings(str(cfg))


def test_model_entries_are_checked(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", {"models": [{"name": "x", "provider": "openai", "api_base": "ftp://h"}]})
    with pytest.raises(ConfigError, match=r"models\.0\.openai\.api_base"):
        load_settings(str(cfg))
    cfg = write(tmp_path / "c.yaml", {"models": [{"name": "x", "provider": "nope"}]})
    with pytest.raises(ConfigError, match=r"models\.0"):
        load_settings(str(cfg))


def test_duplicate_names_refused(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "c.yaml",
        {"models": [{"name": "a", "provider": "mock"}, {"name": "b", "provider": "mock", "aliases": ["a"]}]},
    )
    with pytest.raises(ConfigError, match="'a'"):
        load_settings(str(cfg))


def test_missing_file_is_an_error() -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings("/nonexistent/tollhouse.yaml")


def test_user_model_can_take_embedded_name(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", {"models": [{"name": "local", "provider": "mock"}]})
    models = load_settings(str(cfg)).all_models()
    assert [m.provider for m in models if m.name == "local"] == ["mock"]


def test_admin_key_env_must_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings.model_validate({"auth": {"admin_key_env": "TH_TEST_ADMIN"}})
    with pytest.raises(ConfigError, match="TH_TEST_ADMIN"):
        s.admin_key()
    monkeypatch.setenv("TH_TEST_ADMIN", "secret")
    assert s.admin_key() == "secret"


def test_example_yaml_is_valid_and_documents_every_section() -> None:
    example = ROOT / "tollhouse.example.yaml"
    s = load_settings(str(example))
    assert {m.name for m in s.models} >= {"gpt-4o-mini", "llama3", "echo"}
    data = yaml.safe_load(example.read_text())
    assert set(Settings.model_fields) <= set(data)


def test_configuration_md_matches_the_settings_model() -> None:
    committed = (ROOT / "docs" / "CONFIGURATION.md").read_text()
    assert committed == render(), "regenerate: tollhouse config-docs > docs/CONFIGURATION.md"


def test_metrics_public_and_its_former_name() -> None:
    from tollhouse.config.telemetry import MetricsSettings

    assert MetricsSettings().public is False  # admin-only while auth is on, by default
    assert MetricsSettings.model_validate({"require_admin_key": False}).public is True
    assert MetricsSettings.model_validate({"require_admin_key": "true"}).public is False
    assert MetricsSettings.model_validate({"require_admin_key": False, "public": False}).public is False
    with pytest.raises(ValueError, match="require_admin_key"):
        MetricsSettings.model_validate({"require_admin_key": "maybe"})


@pytest.mark.parametrize(
    ("section", "value"),
    [
        ({"budgets": {"users": {"u": {"daily_usd": 1e308}}}}, "budgets.users.u.daily_usd"),
        ({"emergency": {"daily_spend_usd": float("inf")}}, "emergency.daily_spend_usd"),
        ({"cache": {"ttl_s": float("nan")}}, "cache.ttl_s"),
    ],
)
def test_unbounded_numbers_are_refused_at_start(section: dict[str, object], value: str) -> None:
    with pytest.raises(ConfigError, match=value.replace(".", r"\.")):
        load_settings(None, **section)
