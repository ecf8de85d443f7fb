"""The `flaggery` command as an operator meets it: version, and one-line database errors."""

from __future__ import annotations

import subprocess
import sys
import uuid
from importlib.metadata import version
from pathlib import Path

from sqlalchemy.engine import make_url

import flaggery
from tests.unreachable import unreachable_postgres_url


def flaggery_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flaggery.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_version_comes_from_the_installed_metadata() -> None:
    result = flaggery_command("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"flaggery {version('flaggery')}"
    assert flaggery.__version__ == version("flaggery")


def assert_one_line_failure(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for text in expected:
        assert text in lines[0]


def test_db_upgrade_against_a_closed_port_says_what_to_check() -> None:
    url = unreachable_postgres_url(password="s3cret")
    result = flaggery_command("db", "upgrade", "--db-url", url)
    port = str(make_url(url).port)
    assert_one_line_failure(
        result, f"127.0.0.1:{port}", "unreachable", "Check that the server is running"
    )
    assert "s3cret" not in result.stderr


def test_db_upgrade_in_a_missing_directory_says_what_to_check(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing-dir' / 'flaggery.db'}"
    result = flaggery_command("db", "upgrade", "--db-url", url)
    assert_one_line_failure(result, "missing-dir", "directory exists and is writable")


def test_db_upgrade_with_an_unknown_role_says_what_to_check(postgres_database: str) -> None:
    role = f"nobody_{uuid.uuid4().hex[:8]}"
    url = make_url(postgres_database).set(username=role).render_as_string(hide_password=False)
    result = flaggery_command("db", "upgrade", "--db-url", url)
    assert_one_line_failure(result, f'role "{role}" does not exist', "Check the user")


def test_serving_with_auto_upgrade_fails_the_same_way() -> None:
    url = unreachable_postgres_url()
    result = flaggery_command("--db-url", url, "--db-auto-upgrade")
    assert_one_line_failure(result, "unreachable", "Check that the server is running")


def test_db_upgrade_says_whether_it_migrated(tmp_path: Path, db_url: str) -> None:
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = flaggery_command("db", "upgrade", "--db-url", fresh)
    assert result.returncode == 0, result.stderr
    head = result.stdout.strip().rsplit(" ", 1)[-1].rstrip(".")
    assert "migrated from schema revision none (empty) to " in result.stdout
    assert head.isdigit()
    # db_url is migrated already, on SQLite and PostgreSQL.
    for url in (fresh, db_url):
        result = flaggery_command("db", "upgrade", "--db-url", url)
        assert result.returncode == 0, result.stderr
        assert f"is already at schema revision {head}; nothing to do." in result.stdout
        assert "migrated" not in result.stdout
