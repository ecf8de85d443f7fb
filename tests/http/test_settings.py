"""Settings from FLAGGERY_* variables, explicit values, validation, and secret hiding."""

from __future__ import annotations

import pytest

from flaggery.settings import DEFAULT_DB_URL, Settings, SettingsError, parse_bool


@pytest.mark.parametrize("text", ["1", "true", "TRUE", "Yes", "on", " true "])
def test_true_values(text: str) -> None:
    assert parse_bool("X", text) is True


@pytest.mark.parametrize("text", ["0", "false", "False", "NO", "off"])
def test_false_values(text: str) -> None:
    assert parse_bool("X", text) is False


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.db_url == DEFAULT_DB_URL
    assert settings.db_auto_upgrade is True  # the embedded SQLite file is migrated
    assert settings.admin_mode is False
    assert settings.enable_prometheus is False
    assert settings.enable_docs is True
    assert settings.admin_token is None
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)


def test_from_env() -> None:
    settings = Settings.from_env(
        {
            "FLAGGERY_DB_URL": "postgresql://u@db/flags",
            "FLAGGERY_ADMIN_MODE": "yes",
            "FLAGGERY_ENABLE_PROMETHEUS": "1",
            "FLAGGERY_ENABLE_DOCS": "off",
            "FLAGGERY_ADMIN_TOKEN": "tok",
            "FLAGGERY_WORKERS": "4",
            "FLAGGERY_LOG_LEVEL": "DEBUG",
            "FLAGGERY_UNRELATED": "ignored",
        }
    )
    assert settings.db_url == "postgresql://u@db/flags"
    assert settings.db_auto_upgrade is False  # PostgreSQL: migrations are an explicit step
    assert settings.admin_mode and settings.enable_prometheus and not settings.enable_docs
    assert settings.admin_token == "tok"
    assert settings.workers == 4 and settings.log_level == "debug"


def test_explicit_values_win_and_none_means_not_given() -> None:
    env = {"FLAGGERY_ADMIN_MODE": "true", "FLAGGERY_PORT": "9000"}
    settings = Settings.from_env(env, admin_mode=False, port=None)
    assert settings.admin_mode is False and settings.port == 9000
    with pytest.raises(TypeError, match="colour"):
        Settings.from_env({}, colour="red")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("FLAGGERY_ADMIN_MODE", "maybe", "FLAGGERY_ADMIN_MODE must be a boolean"),
        ("FLAGGERY_DB_AUTO_UPGRADE", "2", "FLAGGERY_DB_AUTO_UPGRADE must be a boolean"),
        (
            "FLAGGERY_PORT",
            "eighty",
            "FLAGGERY_PORT must be a whole number written in the digits 0-9",
        ),
        ("FLAGGERY_PORT", "70000", "FLAGGERY_PORT must be a whole number from 0 to 65535"),
        ("FLAGGERY_WORKERS", "0", "FLAGGERY_WORKERS must be a whole number from 1 to 64"),
        ("FLAGGERY_WORKERS", "1000", "FLAGGERY_WORKERS must be a whole number from 1 to 64"),
        ("FLAGGERY_LOG_LEVEL", "loud", "FLAGGERY_LOG_LEVEL must be one of"),
        ("FLAGGERY_DB_URL", "not a url", "FLAGGERY_DB_URL is not a database URL"),
        ("FLAGGERY_DB_URL", "mysql://db/x", "use postgresql://user@host/db or sqlite:///"),
        ("FLAGGERY_CLIENT_TOKENS", " , ", "FLAGGERY_CLIENT_TOKENS is set but blank"),
        ("FLAGGERY_CORS_ORIGINS", "app.example.com", "FLAGGERY_CORS_ORIGINS must list origins"),
    ],
)
def test_bad_values_are_named(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({variable: value})


def test_the_token_never_shows() -> None:
    settings = Settings.from_env({"FLAGGERY_ADMIN_TOKEN": "hunter2-secret"})
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)
    assert "admin_token='***'" in repr(settings)
    assert "admin_token=None" in repr(Settings())


def test_the_session_secret_is_long_and_never_shows() -> None:
    secret = "s3ssion-" * 5
    settings = Settings.from_env({"FLAGGERY_SESSION_SECRET": secret})
    assert "s3ssion" not in repr(settings) and "session_secret='***'" in repr(settings)
    assert Settings.from_env(settings.to_env()).session_secret == secret
    with pytest.raises(SettingsError, match="FLAGGERY_SESSION_SECRET must be at least 32"):
        Settings.from_env({"FLAGGERY_SESSION_SECRET": "short"})
    with pytest.raises(SettingsError, match="FLAGGERY_SESSION_SECRET may hold only printable"):
        Settings.from_env({"FLAGGERY_SESSION_SECRET": "with spaces " * 4})


def test_client_tokens_never_show_and_lists_split() -> None:
    settings = Settings.from_env(
        {"FLAGGERY_CLIENT_TOKENS": "tok-one, tok-two,", "FLAGGERY_CORS_ORIGINS": "https://a.b, *"}
    )
    assert "tok-" not in repr(settings) and "client_tokens='***'" in repr(settings)
    assert settings.client_token_list == ("tok-one", "tok-two")
    assert settings.cors_origin_list == ("https://a.b", "*")
    assert Settings().client_token_list == () and Settings().cors_origin_list == ()


STRONG = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
"""A secret strong enough for a server off loopback (flaggery.settings.strong_secret)."""


def test_admin_exposure() -> None:
    Settings(admin_mode=True, host="127.0.0.1").check_exposure()
    Settings(admin_mode=True, host="localhost").check_exposure()
    Settings(admin_mode=True, host="::1").check_exposure()
    Settings(admin_mode=False, host="0.0.0.0").check_exposure()
    Settings(admin_mode=True, host="0.0.0.0", admin_token=STRONG).check_exposure()
    with pytest.raises(SettingsError, match="FLAGGERY_ADMIN_TOKEN"):
        Settings(admin_mode=True, host="0.0.0.0").check_exposure()


def test_an_edge_with_an_upstream_token_needs_tokens_of_its_own() -> None:
    upstream = "http://upstream.internal"
    for host in ("127.0.0.1", "0.0.0.0"):
        with pytest.raises(SettingsError, match="FLAGGERY_TOKENS or FLAGGERY_TOKENS_FILE"):
            Settings(upstream_url=upstream, upstream_token="r", host=host).check_exposure()
    Settings(
        upstream_url=upstream, upstream_token="r", host="0.0.0.0", tokens=f"edge2:reader:{STRONG}"
    ).check_exposure()
    Settings(upstream_url="http://upstream.internal", host="0.0.0.0").check_exposure()


def test_reader_routes_are_closed_off_loopback_without_tokens() -> None:
    assert Settings(host="0.0.0.0").reader_routes_closed
    assert not Settings(host="0.0.0.0", tokens="g:reader:s").reader_routes_closed
    assert not Settings(host="127.0.0.1").reader_routes_closed
    assert not Settings(host="::1").reader_routes_closed


def test_round_trip_through_the_environment() -> None:
    settings = Settings.from_env(
        {"FLAGGERY_ADMIN_TOKEN": "t", "FLAGGERY_ADMIN_MODE": "1", "FLAGGERY_PORT": "81"}
    )
    assert Settings.from_env(settings.to_env()) == settings


@pytest.mark.parametrize(
    "variable",
    [f"FLAGGERY_{field.upper()}" for field in Settings.__dataclass_fields__],
)
@pytest.mark.parametrize("blank", ["", "  ", "\t\n"])
def test_every_blank_variable_is_an_error(variable: str, blank: str) -> None:
    with pytest.raises(SettingsError, match=f"{variable} is set but blank"):
        Settings.from_env({variable: blank})


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("FLAGGERY_PORT", " 81 ", 81),
        ("FLAGGERY_READ_TIMEOUT", "2.5", 2.5),
        ("FLAGGERY_READ_TIMEOUT", "30", 30.0),
        ("FLAGGERY_READ_TIMEOUT", str(0.1 + 0.2), 0.1 + 0.2),  # what to_env() writes
        ("FLAGGERY_ADMIN_MODE", "yes", True),
        ("FLAGGERY_ADMIN_MODE", "0", False),
        ("FLAGGERY_ACCESS_LOG", "ON", True),
        ("FLAGGERY_LOG_LEVEL", "Warning", "warning"),
        ("FLAGGERY_ADMIN_TOKEN", "a-b_c.d~e+f/g=", "a-b_c.d~e+f/g="),
    ],
)
def test_good_values(variable: str, value: str, expected: object) -> None:
    settings = Settings.from_env({variable: value})
    assert getattr(settings, variable.removeprefix("FLAGGERY_").lower()) == expected


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("FLAGGERY_PORT", "0x50", "written in the digits 0-9"),
        ("FLAGGERY_PORT", "8_000", "written in the digits 0-9"),
        ("FLAGGERY_PORT", "-1", "from 0 to 65535"),
        ("FLAGGERY_PORT", "+81", "written in the digits 0-9"),  # one rule: flaggery.decimal_text
        ("FLAGGERY_WORKERS", "1.5", "written in the digits 0-9"),
        ("FLAGGERY_READ_TIMEOUT", "-1", "more than 0"),
        ("FLAGGERY_READ_TIMEOUT", "inf", "must be a number of seconds"),
        ("FLAGGERY_READ_TIMEOUT", "1e3", "must be a number of seconds"),
        ("FLAGGERY_ENABLE_DOCS", "y", "must be a boolean"),
        ("FLAGGERY_ENABLE_DOCS", "2", "must be a boolean"),
        ("FLAGGERY_ADMIN_TOKEN", " tok", "printable ASCII without spaces"),
        ("FLAGGERY_ADMIN_TOKEN", "tok\n", "printable ASCII without spaces"),
        ("FLAGGERY_ADMIN_TOKEN", "t\u00f6k", "printable ASCII without spaces"),
    ],
)
def test_bad_values_of_each_kind(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({variable: value})


def test_settings_built_in_code_follow_the_same_rule() -> None:
    with pytest.raises(SettingsError, match="FLAGGERY_ADMIN_TOKEN is set but blank"):
        Settings(admin_token="")
    with pytest.raises(SettingsError, match="FLAGGERY_WORKERS must be from 1"):
        Settings(workers=0)


def test_cli_flags_mirror_the_new_variables() -> None:
    from flaggery.cli import _serve_parser

    args = _serve_parser().parse_args(
        ["--client-tokens", "a,b", "--cors-origins", "https://shop.example.com"]
    )
    settings = Settings.from_env({"FLAGGERY_CLIENT_TOKENS": "ignored"}, **vars(args))
    assert settings.client_token_list == ("a", "b")
    assert settings.cors_origin_list == ("https://shop.example.com",)
