"""Every setting has a command-line flag, generated from the Settings fields: ``--help`` shows
each with its variable, each secret also has a ``--<flag>-file``, and a value given by a flag
reaches its setting."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flaggery.cli import GROUPS, _serve_parser
from flaggery.settings import SECRET_FILES, SECRETS, Settings

# One value per setting, other than its default: a new setting fails this test until it is
# given one here (and so until its flag is known to work).
EXAMPLES: dict[str, tuple[str, Any]] = {
    "db_url": ("postgresql://u@db/flags", "postgresql://u@db/flags"),
    "db_auto_upgrade": ("--no-db-auto-upgrade", False),
    "admin_mode": ("--admin", True),
    "admin_token": ("admin-secret", "admin-secret"),
    "client_tokens": ("c1,c2", "c1,c2"),
    "cors_origins": ("https://app.example.com", "https://app.example.com"),
    "allowed_hosts": ("flags.internal", "flags.internal"),
    "subject_attribute": ("tenant", "tenant"),
    "max_streams": ("64", 64),
    "tokens": ("bot:reader:bot-secret", "bot:reader:bot-secret"),
    "tokens_file": ("TOKENS_FILE", "TOKENS_FILE"),
    "upstream_url": ("http://upstream:8000", "http://upstream:8000"),
    "upstream_token": ("up-secret", "up-secret"),
    "session_secret": ("s" * 32, "s" * 32),
    "snapshot_path": ("/tmp/flaggery.snapshot", "/tmp/flaggery.snapshot"),
    "change_log_retention_revisions": ("500", 500),
    "change_log_retention_days": ("7", 7),
    "min_revision_wait": ("2.5", 2.5),
    "stream_keepalive": ("30", 30.0),
    "exposure_flush_interval": ("0.5", 0.5),
    "enable_prometheus": ("--prometheus", True),
    "enable_docs": ("--no-docs", False),
    "host": ("0.0.0.0", "0.0.0.0"),
    "port": ("9000", 9000),
    "workers": ("3", 3),
    "log_level": ("DEBUG", "debug"),
    "log_format": ("json", "json"),
    "access_log": ("--access-log", True),
    "read_timeout": ("12", 12.0),
    "webhook_allow_loopback": ("--webhook-allow-loopback", True),
    "webhook_allow_private": ("--webhook-allow-private", True),
    "webhook_failing_after": ("120", 120.0),
    "guard_action": ("kill", "kill"),
}
EDGE = {"upstream_url", "upstream_token"}  # an edge is read-only: not with --admin


def _flag(field: dataclasses.Field[Any]) -> str:
    return str(field.metadata["flag"] or f"--{field.name.replace('_', '-')}")


def test_every_setting_has_an_example() -> None:
    assert sorted(EXAMPLES) == sorted(field.name for field in dataclasses.fields(Settings))


@pytest.mark.parametrize("field", dataclasses.fields(Settings), ids=lambda field: field.name)
def test_the_flag_sets_its_setting(field: dataclasses.Field[Any], tmp_path: Path) -> None:
    text, expected = EXAMPLES[field.name]
    if field.name == "tokens_file":
        path = tmp_path / "tokens"
        path.write_text("reader-bot:reader:from-the-file\n")
        text = expected = str(path)
    argv = [text] if text.startswith("--") else [_flag(field), text]
    if field.name in EDGE:  # an edge's token needs its URL, and a token of its own
        argv += ["--upstream", "http://upstream:8000", "--tokens", "edge:reader:edge-secret"]
    settings = Settings.from_env({}, **vars(_serve_parser().parse_args(argv)))
    assert getattr(settings, field.name) == expected


@pytest.mark.parametrize("name", SECRET_FILES)
def test_each_secret_flag_has_a_file_flag(name: str, tmp_path: Path) -> None:
    text, expected = EXAMPLES[name]
    path = tmp_path / name
    path.write_text(f"{text}\n")  # as `echo` writes a mounted secret
    flag = _flag(next(field for field in dataclasses.fields(Settings) if field.name == name))
    argv = [f"{flag}-file", str(path)]
    if name in EDGE:
        argv += ["--upstream", "http://upstream:8000", "--tokens", "edge:reader:edge-secret"]
    settings = Settings.from_env({}, **vars(_serve_parser().parse_args(argv)))
    assert getattr(settings, name) == expected


def test_help_shows_every_variable_in_its_group() -> None:
    """The real command's --help: each setting's flag and variable, each secret file's, and
    the group titles."""
    result = subprocess.run(
        [sys.executable, "-m", "flaggery.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())  # argparse wraps long help lines
    for field in dataclasses.fields(Settings):
        variable = f"FLAGGERY_{field.name.upper()}"
        assert _flag(field) in text and variable in text, field.name
        if field.name in SECRET_FILES:
            assert f"{_flag(field)}-file" in text and f"{variable}_FILE" in text
    for title in GROUPS.values():
        assert f"{title}:" in text


def test_the_secrets_are_the_hidden_fields() -> None:
    hidden = {field.name for field in dataclasses.fields(Settings) if not field.repr}
    assert hidden == set(SECRETS)
    assert set(SECRET_FILES) == (hidden - {"tokens"}) | {"db_url"}
