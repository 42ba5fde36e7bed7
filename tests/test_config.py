"""Settings from TOML, HUBBUB_* variables and overrides, with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubbub.config import Settings, load_settings, with_development_defaults
from hubbub.core.channels import NamespaceOptions
from hubbub.errors import ConfigError

CONFIG = """
[hub]
secret = "file-secret"
api_key = "file-key"
allowed_origins = ["https://app.example.com"]
rate_limit = 5
rate_burst = 7
port = 9000
strict_namespaces = true

[namespaces.default]
history_size = 10
presence = false

[namespaces.news]
publish = false

[namespaces.chat]
history_size = 500
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "hubbub.toml"
    path.write_text(CONFIG)
    return path


def test_defaults() -> None:
    settings = load_settings(environ={})
    assert settings == Settings()
    assert settings.max_message_size == 65536
    assert settings.ping_interval == 25
    assert settings.pong_timeout == 10
    assert settings.rate_limit == 20
    assert settings.rate_burst == 50
    assert settings.max_queue_bytes == 1_048_576
    assert settings.allowed_origins is None
    assert settings.demo is True
    assert settings.compression is False
    assert settings.engine == "memory"


def test_file(config_file: Path) -> None:
    settings = load_settings(config_file, environ={})
    assert settings.secret == "file-secret"
    assert settings.api_key == "file-key"
    assert settings.allowed_origins == ["https://app.example.com"]
    assert settings.rate_limit == 5
    assert settings.rate_burst == 7
    assert settings.port == 9000
    assert settings.strict_namespaces


def test_namespaces_fall_back_to_default(config_file: Path) -> None:
    table = load_settings(config_file, environ={}).namespace_table()
    news = table.resolve("news:today")
    assert news == NamespaceOptions(publish=False, history_size=10, presence=False)
    chat = table.resolve("chat:lobby")
    assert chat.history_size == 500
    assert chat.presence is False
    assert chat.publish is True
    assert table.resolve("bare").history_size == 10
    assert table.strict


def test_environment_overrides_file(config_file: Path) -> None:
    environ = {
        "HUBBUB_SECRET": "env-secret",
        "HUBBUB_RATE_LIMIT": "2.5",
        "HUBBUB_DEMO": "false",
        "HUBBUB_ALLOWED_ORIGINS": "https://a.example, https://b.example",
        "HUBBUB_MAX_QUEUE_BYTES": "65536",
        "UNRELATED": "x",
    }
    settings = load_settings(config_file, environ=environ)
    assert settings.secret == "env-secret"
    assert settings.api_key == "file-key"  # not in the environment: from the file
    assert settings.rate_limit == 2.5
    assert settings.demo is False
    assert settings.allowed_origins == ["https://a.example", "https://b.example"]
    assert settings.max_queue_bytes == 65536


def test_overrides_win(config_file: Path) -> None:
    settings = load_settings(
        config_file,
        environ={"HUBBUB_PORT": "9100", "HUBBUB_ENGINE": "redis://env"},
        overrides={"port": 9200, "engine": None, "host": "0.0.0.0"},
    )
    assert settings.port == 9200
    assert settings.engine == "redis://env"  # a None flag is "not given"
    assert settings.host == "0.0.0.0"


def test_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBBUB_SECRET", "from-os")
    assert load_settings().secret == "from-os"


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"HUBBUB_MAX_MESSAGE_SIZE": "abc"}, "max_message_size"),
        ({"HUBBUB_MAX_MESSAGE_SIZE": "10"}, "max_message_size"),
        ({"HUBBUB_PORT": "70000"}, "port"),
        ({"HUBBUB_RATE_LIMIT": "0"}, "rate_limit"),
        ({"HUBBUB_PING_INTERVAL": "-1"}, "ping_interval"),
        ({"HUBBUB_WORKERS": "0"}, "workers"),
    ],
)
def test_bad_environment_names_the_key(environ: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ=environ)
    assert key in str(info.value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[hub]\nbogus = 1\n", ["bogus"]),
        ("[hub]\nrate_burst = 0\n", ["rate_burst"]),
        ('[hub]\nallowed_origins = "x"\n', ["allowed_origins"]),
        ("[hub]\nnamespaces = 1\n", ["namespaces"]),
        ("[hub]\ndevelopment = true\n", ["development"]),
        ("[other]\nx = 1\n", ["other"]),
        ("hub = 1\n", ["[hub]"]),
        ('[namespaces.news]\nhistory_size = "x"\n', ["namespaces.news", "history_size"]),
        ("[namespaces.news]\nbogus = 1\n", ["namespaces.news", "bogus"]),
        ("[namespaces.default]\npublish = 3\n", ["namespaces.default", "publish"]),
        ("[namespaces]\nnews = 1\n", ["namespaces.news"]),
        ("[hub\n", ["not valid TOML"]),
    ],
)
def test_bad_file_names_the_key(tmp_path: Path, text: str, words: list[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    for word in words:
        assert word in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "missing.toml", environ={})


def test_development_defaults() -> None:
    settings = with_development_defaults(Settings())
    assert settings.development
    assert settings.secret
    assert settings.api_key
    assert with_development_defaults(Settings()).secret != settings.secret
    configured = Settings(secret="s")
    assert with_development_defaults(configured) is configured
    keeps_key = with_development_defaults(Settings(api_key="k"))
    assert keeps_key.api_key == "k"
