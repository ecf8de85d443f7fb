"""Credentials are read once, and every secret may come from a file (FLAGGERY_<NAME>_FILE)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from flaggery.http import create_app
from flaggery.settings import Settings, SettingsError
from tests.fakes import FakeClock


async def test_the_tokens_file_is_read_once(
    tmp_path: Path, db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One Settings, one read: building the app, starting it and serving the admin, reader
    and client routes read no credential file again (it was 82 reads per create_app)."""
    path = tmp_path / "tokens"
    path.write_text("ops:admin:ops-secret\nbot:reader:bot-secret\napp:client:app-secret\n")
    reads: list[str] = []
    real_open = open

    def counting_open(file: object, *args: object, **kwargs: object) -> object:
        if str(file) == str(path):
            reads.append(str(file))
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", counting_open)
    settings = Settings.from_env(
        {}, db_url=db_url, db_auto_upgrade=False, admin_mode=True, tokens_file=str(path)
    )
    assert len(reads) == 1
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for token, route in [
                ("ops-secret", "/v1/buckets"),
                ("bot-secret", "/v1/changes"),
                ("app-secret", "/ofrep/v1/evaluate/flags"),
            ]:
                method = "POST" if route.startswith("/ofrep") else "GET"
                response = await client.request(
                    method,
                    route,
                    headers={"Authorization": f"Bearer {token}"},
                    json={"context": {"targetingKey": "1"}},
                )
                assert response.status_code < 400, (route, response.text)
            refused = await client.get("/v1/buckets", headers={"Authorization": "Bearer nope"})
            assert refused.status_code == 401
    assert len(reads) == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("admin_token", "from-a-file"),
        ("client_tokens", "one,two"),
        ("upstream_token", "edge-token"),
        ("session_secret", "x" * 40),
        ("db_url", "postgresql://flaggery:pa%24%24@db:5432/flags"),
    ],
)
def test_a_secret_is_read_from_its_file_variable(tmp_path: Path, name: str, value: str) -> None:
    path = tmp_path / "secret"
    path.write_text(f"{value}\n")  # a mounted secret usually ends with a newline
    env = {f"FLAGGERY_{name.upper()}_FILE": str(path)}
    if name == "upstream_token":
        env |= {"FLAGGERY_UPSTREAM_URL": "http://up:8000", "FLAGGERY_TOKENS": "e:reader:e-s"}
    assert getattr(Settings.from_env(env), name) == value


def test_a_flag_wins_over_a_file_variable(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("from-the-file")
    env = {"FLAGGERY_ADMIN_TOKEN_FILE": str(path)}
    assert Settings.from_env(env, admin_token="from-the-flag").admin_token == "from-the-flag"
    assert Settings.from_env(env).admin_token == "from-the-file"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "FLAGGERY_ADMIN_TOKEN_FILE (.*) is empty: a secret that failed to mount"),
        ("\n  \n", "FLAGGERY_ADMIN_TOKEN_FILE (.*) is empty"),
        ("two words", "FLAGGERY_ADMIN_TOKEN may hold only printable ASCII without spaces"),
        (None, "FLAGGERY_ADMIN_TOKEN_FILE cannot be read: .*No such file"),
    ],
)
def test_a_bad_secret_file_is_refused(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "secret"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({"FLAGGERY_ADMIN_TOKEN_FILE": str(path)})


def test_a_value_given_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("a")
    both = {"FLAGGERY_ADMIN_TOKEN": "b", "FLAGGERY_ADMIN_TOKEN_FILE": str(path)}
    with pytest.raises(SettingsError, match="FLAGGERY_ADMIN_TOKEN and FLAGGERY_ADMIN_TOKEN_FILE"):
        Settings.from_env(both)
    with pytest.raises(SettingsError, match="are both set"):
        Settings.from_env({}, admin_token="b", admin_token_file=str(path))


def test_repr_hides_the_database_password() -> None:
    settings = Settings(db_url="postgresql://flaggery:hunter2@db/flags", admin_token="tok")
    assert "hunter2" not in repr(settings) and "tok'" not in repr(settings)
    assert "postgresql://flaggery:***@db/flags" in repr(settings)
