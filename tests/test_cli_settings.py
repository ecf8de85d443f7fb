"""The ``flaggery`` command refuses unusable settings before it serves or migrates anything:
flags and variables go through one parser, and a blank value is an error, never "unset"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flaggery.cli import main

BLANK_TOKEN = "FLAGGERY_ADMIN_TOKEN is set but blank"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # a command that wrongly went on would create ./flaggery.db
    for variable in [v for v in os.environ if v.startswith("FLAGGERY_")]:
        monkeypatch.delenv(variable)


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    assert not Path("flaggery.db").exists()
    return capsys.readouterr().err


@pytest.mark.parametrize("blank", ["", " ", "\t", "\n"])
def test_a_blank_token_variable_is_refused_like_the_flag(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], blank: str
) -> None:
    flag_message = _refused(capsys, ["--admin", "--admin-token", blank])
    monkeypatch.setenv("FLAGGERY_ADMIN_TOKEN", blank)
    assert _refused(capsys, ["--admin"]) == flag_message
    assert BLANK_TOKEN in flag_message


@pytest.mark.parametrize(
    ("variable", "flag", "value", "message"),
    [
        ("FLAGGERY_PORT", "--port", "", "FLAGGERY_PORT is set but blank"),
        ("FLAGGERY_PORT", "--port", "80.0", "FLAGGERY_PORT must be a whole number"),
        ("FLAGGERY_PORT", "--port", "1_000", "FLAGGERY_PORT must be a whole number"),
        ("FLAGGERY_PORT", "--port", "٣", "FLAGGERY_PORT must be a whole number"),
        (
            "FLAGGERY_PORT",
            "--port",
            "9" * 5000,
            "FLAGGERY_PORT must be a whole number from 0 to 65535",
        ),
        ("FLAGGERY_WORKERS", "--workers", "0", "FLAGGERY_WORKERS must be a whole number from 1"),
        ("FLAGGERY_HOST", "--host", " ", "FLAGGERY_HOST is set but blank"),
        ("FLAGGERY_DB_URL", "--db-url", "", "FLAGGERY_DB_URL is set but blank"),
        ("FLAGGERY_SNAPSHOT_PATH", "--snapshot-path", "", "FLAGGERY_SNAPSHOT_PATH is set but"),
        ("FLAGGERY_LOG_LEVEL", "--log-level", "loud", "FLAGGERY_LOG_LEVEL must be one of"),
        ("FLAGGERY_READ_TIMEOUT", "--read-timeout", "0", "FLAGGERY_READ_TIMEOUT must be"),
        ("FLAGGERY_READ_TIMEOUT", "--read-timeout", "nan", "FLAGGERY_READ_TIMEOUT must be"),
        ("FLAGGERY_ADMIN_TOKEN", "--admin-token", "two words", "printable ASCII without"),
        (
            "FLAGGERY_CHANGE_LOG_RETENTION_DAYS",
            "--change-log-retention-days",
            "-1",
            "FLAGGERY_CHANGE_LOG_RETENTION_DAYS must be a whole number from 0",
        ),
        (
            "FLAGGERY_CHANGE_LOG_RETENTION_REVISIONS",
            "--change-log-retention-revisions",
            "",
            "FLAGGERY_CHANGE_LOG_RETENTION_REVISIONS is set but blank",
        ),
    ],
)
def test_flag_and_variable_share_one_rule(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    flag: str,
    value: str,
    message: str,
) -> None:
    from_flag = _refused(capsys, [flag, value])
    monkeypatch.setenv(variable, value)
    assert _refused(capsys, []) == from_flag
    assert message in from_flag


def test_db_upgrade_refuses_a_blank_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FLAGGERY_DB_URL", "")
    assert "FLAGGERY_DB_URL is set but blank" in _refused(capsys, ["db", "upgrade"])


def test_the_real_command_refuses_a_blank_token_variable(tmp_path: Path) -> None:
    """The reported case: the secret file was missing, so the variable is empty."""
    result = subprocess.run(
        [sys.executable, "-m", "flaggery.cli"],
        env={"FLAGGERY_ADMIN_MODE": "true", "FLAGGERY_ADMIN_TOKEN": "", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert BLANK_TOKEN in result.stderr
    assert not (tmp_path / "flaggery.db").exists()
