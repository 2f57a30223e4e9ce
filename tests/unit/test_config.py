"""Config: TOML plus QBPROXY_* overrides into one typed object; errors name the key."""

from pathlib import Path

import pytest

from qbproxy.config import Settings, load_config, redact_dsn
from qbproxy.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_defaults_match_the_shipped_proxy_toml() -> None:
    # proxy.toml documents every key with its default: it must load to the defaults.
    assert load_config((REPO / "proxy.toml").read_text(), {}) == Settings()


def test_shipped_proxy_toml_names_every_key() -> None:
    import tomllib

    doc = tomllib.loads((REPO / "proxy.toml").read_text())
    for section in Settings.__dataclass_fields__:
        keys = getattr(Settings(), section).__dataclass_fields__
        assert set(doc[section]) == set(keys), section


def test_environment_overrides_file_with_type_conversion() -> None:
    settings = load_config(
        "[cache]\nttl_seconds = 60\n[server]\nport = 1\n",
        {
            "QBPROXY_SERVER_PORT": "9000",
            "QBPROXY_CACHE_TTL_SECONDS": "12.5",
            "QBPROXY_SYNC_CDC": "off",
            "QBPROXY_UPSTREAM_BASE_URL": "http://127.0.0.1:1234",
            "QBPROXY_DATABASE_DSN": "postgresql://u:pw@db/x",
            "PATH": "/bin",
        },
    )
    assert settings.server.port == 9000
    assert settings.cache.ttl_seconds == 12.5
    assert settings.sync.cdc is False
    assert settings.upstream.base_url == "http://127.0.0.1:1234"
    assert settings.database.dsn == "postgresql://u:pw@db/x"


def test_file_value_used_when_no_override() -> None:
    assert load_config("[cache]\nttl_seconds = 60\n", {}).cache.ttl_seconds == 60.0


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ("[cache]\nttl = 5\n", {}, "unknown config key cache.ttl"),
        ("[nope]\na = 1\n", {}, "unknown config section [nope]"),
        ("[server]\nport = 'eighty'\n", {}, "server.port must be an integer"),
        ("", {"QBPROXY_SERVER_PORT": "eighty"}, "server.port must be an integer"),
        ("", {"QBPROXY_CACHE_TTL_SECONDS": "-5"}, "cache.ttl_seconds must be > 0, got -5"),
        ("", {"QBPROXY_SYNC_CDC": "maybe"}, "sync.cdc must be true or false"),
        ("", {"QBPROXY_BOGUS_KEY": "1"}, "QBPROXY_BOGUS_KEY does not name a config key"),
        ("", {"QBPROXY_CACHE_NOPE": "1"}, "unknown config key cache.nope"),
        ("[server]\nport = 70000\n", {}, "server.port must be a TCP port"),
        ("[upstream]\nbase_url = 'ftp://x'\n", {}, "upstream.base_url must be an http(s) URL"),
        ("[database]\ndsn = 'mysql://x'\n", {}, "database.dsn must be a postgresql:// URL"),
        ("[cache]\nttl_seconds = true\n", {}, "cache.ttl_seconds must be a number"),
        ("[webhooks]\npath = 'hooks'\n", {}, "webhooks.path must start with '/'"),
        ("[server\n", {}, "not valid TOML"),
    ],
)
def test_bad_config_is_a_config_error_naming_the_key(
    toml: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(toml, env)
    assert message in str(info.value)


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"server\.port"):
        load_config("", {"QBPROXY_SERVER_PORT": "x"})


def test_repr_hides_dsn_password_and_verifier_token() -> None:
    settings = load_config(
        "",
        {
            "QBPROXY_DATABASE_DSN": "postgresql://user:s3cret@db:5432/q",
            "QBPROXY_WEBHOOKS_VERIFIER_TOKEN": "hook-secret",
        },
    )
    text = repr(settings)
    assert "s3cret" not in text
    assert "hook-secret" not in text
    assert "postgresql://user:***@db:5432/q" in text


def test_redact_dsn_without_password_is_unchanged() -> None:
    assert redact_dsn("postgresql://postgres@127.0.0.1/x") == "postgresql://postgres@127.0.0.1/x"
