"""Settings a new-user trial got wrong: every refusal names the variable and says what is wrong
(a range for numbers too large, the entry format for tokens), and values that used to start a
server that could not work (a snapshot path in no directory, a host that is not one, secrets
shared between roles, an origin with a path, tokens that list none) are refused at start."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flaggery.settings import Settings, SettingsError


def _refused(environ: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as refusal:
        Settings.from_env(environ)
    return str(refusal.value)


@pytest.mark.parametrize(
    ("variable", "text", "message"),
    [
        (
            "FLAGGERY_CHANGE_LOG_RETENTION_REVISIONS",
            "99999999999999999999999",
            "FLAGGERY_CHANGE_LOG_RETENTION_REVISIONS must be a whole number "
            "from 0 to 1000000000000",
        ),
        (
            "FLAGGERY_WORKERS",
            "1" + "0" * 30,
            "FLAGGERY_WORKERS must be a whole number from 1 to 64",
        ),
        (
            "FLAGGERY_PORT",
            "-99999999999999999999",
            "FLAGGERY_PORT must be a whole number from 0 to 65535",
        ),
        (
            "FLAGGERY_STREAM_KEEPALIVE",
            "99999999999999999999",
            "FLAGGERY_STREAM_KEEPALIVE must be seconds, more than 0 and at most 3600",
        ),
        (
            "FLAGGERY_MIN_REVISION_WAIT",
            "99999999999999999999.5",
            "FLAGGERY_MIN_REVISION_WAIT must be seconds, from 0 to 300",
        ),
        (
            "FLAGGERY_READ_TIMEOUT",
            "1" * 5000,
            "FLAGGERY_READ_TIMEOUT must be seconds, more than 0 and at most 86400",
        ),
    ],
)
def test_numbers_too_large_are_refused_with_their_range(
    variable: str, text: str, message: str
) -> None:
    refusal = _refused({variable: text})
    assert message in refusal and "digits only" not in refusal and "such as 30" not in refusal
    assert len(refusal) < 300  # a long value is not echoed whole


@pytest.mark.parametrize("host", ["not a host", "-leading.example", "a..b", "a/b", "x" * 300])
def test_a_host_that_is_not_one_is_refused_naming_the_variable(host: str) -> None:
    assert "FLAGGERY_HOST must be an IP address" in _refused({"FLAGGERY_HOST": host})


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "::", "[::1]", "localhost", "a-b.c"])
def test_addresses_and_host_names_are_accepted(host: str) -> None:
    assert Settings.from_env({"FLAGGERY_HOST": host}).host == host


def test_a_host_name_that_does_not_resolve_is_refused_at_start() -> None:
    # .invalid never resolves (RFC 6761).
    settings = Settings.from_env({"FLAGGERY_HOST": "flaggery.invalid"})
    with pytest.raises(SettingsError, match=r"FLAGGERY_HOST 'flaggery\.invalid' does not resolve"):
        settings.check_startup()
    Settings.from_env({"FLAGGERY_HOST": "localhost"}).check_startup()


def test_a_snapshot_path_that_cannot_hold_a_file_is_refused_at_start(tmp_path: Path) -> None:
    for path, problem in [
        (tmp_path / "missing" / "snap", "does not exist"),
        (tmp_path, "it is a directory"),
    ]:
        settings = Settings.from_env({"FLAGGERY_SNAPSHOT_PATH": str(path)})
        with pytest.raises(SettingsError, match=f"FLAGGERY_SNAPSHOT_PATH .*{problem}"):
            settings.check_startup()
    Settings.from_env({"FLAGGERY_SNAPSHOT_PATH": str(tmp_path / "snap")}).check_startup()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in any directory")
def test_a_snapshot_path_in_a_read_only_directory_is_refused_at_start(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        settings = Settings.from_env({"FLAGGERY_SNAPSHOT_PATH": str(tmp_path / "snap")})
        with pytest.raises(SettingsError, match="may not write"):
            settings.check_startup()
    finally:
        tmp_path.chmod(0o700)


def test_a_space_inside_a_token_entry_says_entries_are_separated_by_whitespace() -> None:
    refusal = _refused({"FLAGGERY_TOKENS": "a b:admin:x"})
    assert "token entry 1 has no ':'" in refusal and "'a'" not in refusal
    assert "separated by whitespace" in refusal and "blank" not in refusal


@pytest.mark.parametrize(
    ("environ", "holder"),
    [
        ({"FLAGGERY_ADMIN_TOKEN": "shared-1", "FLAGGERY_CLIENT_TOKENS": "x,shared-1"}, "admin"),
        ({"FLAGGERY_TOKENS": "g:reader:shared-2", "FLAGGERY_CLIENT_TOKENS": "shared-2"}, "g"),
    ],
)
def test_a_secret_shared_between_roles_is_refused(environ: dict[str, str], holder: str) -> None:
    refusal = _refused(environ)
    assert "FLAGGERY_CLIENT_TOKENS holds the secret of the" in refusal
    assert repr(holder) in refusal and "shared-" not in refusal  # never the secret itself


@pytest.mark.parametrize(
    "origin",
    [
        "https://a.com/path",
        "https://a.com/",
        "https://a.com?x=1",
        "https://a.com#top",
        "https://user@a.com",
        "https://a.com:port",
        "ftp://a.com",
        "https://",
    ],
)
def test_an_origin_with_more_than_scheme_host_and_port_is_refused(origin: str) -> None:
    refusal = _refused({"FLAGGERY_CORS_ORIGINS": f"https://ok.example,{origin}"})
    assert "FLAGGERY_CORS_ORIGINS must list origins" in refusal and repr(origin) in refusal


def test_origins_are_accepted() -> None:
    origins = "https://a.com, http://localhost:8080,https://[::1]:3000,*"
    assert Settings.from_env({"FLAGGERY_CORS_ORIGINS": origins}).cors_origin_list == (
        "https://a.com",
        "http://localhost:8080",
        "https://[::1]:3000",
        "*",
    )
