"""Named tokens (issue 11, item 1): the format, its errors, roles, and the settings that hold
them. No database."""

from __future__ import annotations

from pathlib import Path

import pytest

from flaggery.settings import Settings, SettingsError
from flaggery.tokens import NamedToken, Role, TokenFormatError, parse_tokens


def test_entries_comments_and_secrets_with_colons() -> None:
    tokens = parse_tokens("# name:role:secret\nbot:admin:a:b:c  grafana:reader:xyz # ro\n")
    assert tokens == (
        NamedToken("bot", Role.ADMIN, b"a:b:c"),
        NamedToken("grafana", Role.READER, b"xyz"),
    )
    assert "a:b:c" not in repr(tokens)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("bot:admin:", "secret is blank"),
        ("bot:admin", "secret is blank"),
        ("bot:owner:x", "unknown role 'owner' (roles: guard, client, reader, admin)"),
        ("bot:Admin:x", "unknown role"),
        (":admin:x", "a name is"),
        ("bot:admin:x bot:reader:y", "given twice: bot"),
        ("a:admin:x b:reader:x", "share a secret"),
    ],
)
def test_malformed_entries_are_refused(text: str, reason: str) -> None:
    with pytest.raises(TokenFormatError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_tokens(text)


def test_roles_include_lower_roles() -> None:
    assert Role.ADMIN.allows(Role.READER) and Role.ADMIN.allows(Role.ADMIN)
    assert not Role.READER.allows(Role.ADMIN)


def test_settings_join_the_admin_token_the_variable_and_the_file(tmp_path: Path) -> None:
    file = tmp_path / "tokens"
    file.write_text("ci:reader:from-file\n")
    env = {
        "FLAGGERY_ADMIN_TOKEN": "legacy",
        "FLAGGERY_TOKENS": "bot:admin:from-env",
        "FLAGGERY_TOKENS_FILE": str(file),
    }
    settings = Settings.from_env(env)
    names = [(token.name, token.role) for token in settings.named_tokens()]
    assert names == [("admin", Role.ADMIN), ("bot", Role.ADMIN), ("ci", Role.READER)]
    assert settings.requires_tokens
    assert "from-env" not in repr(settings) and "legacy" not in repr(settings)
    assert Settings.from_env(settings.to_env()).named_tokens() == settings.named_tokens()
    assert not Settings.from_env({}).requires_tokens


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"FLAGGERY_TOKENS": "  "}, "blank"),
        ({"FLAGGERY_TOKENS": "bot:admin:"}, "secret is blank"),
        ({"FLAGGERY_TOKENS_FILE": "/nonexistent/tokens"}, "cannot be read"),
        ({"FLAGGERY_ADMIN_TOKEN": "x", "FLAGGERY_TOKENS": "admin:reader:y"}, "twice: admin"),
    ],
)
def test_settings_refuse_unusable_tokens(env: dict[str, str], reason: str) -> None:
    with pytest.raises(SettingsError, match=reason):
        Settings.from_env(env)


@pytest.mark.parametrize("content", ["", "\n  \n", "# nothing yet\n", "# a\n   # b\n"])
def test_a_token_file_without_entries_is_refused_like_a_blank_value(
    tmp_path: Path, content: str
) -> None:
    # A secret that failed to mount often leaves an empty file: "no tokens" would open the API.
    file = tmp_path / "tokens"
    file.write_text(content)
    with pytest.raises(SettingsError, match=r"FLAGGERY_TOKENS_FILE .* lists no token"):
        Settings.from_env({"FLAGGERY_TOKENS_FILE": str(file)})


@pytest.mark.parametrize("text", ["# none", "# a\n# b\n", "  # only a comment  "])
def test_tokens_without_entries_are_refused_like_a_blank_value(text: str) -> None:
    with pytest.raises(SettingsError, match="FLAGGERY_TOKENS lists no token"):
        Settings.from_env({"FLAGGERY_TOKENS": text})


def test_the_guard_role_stands_apart() -> None:
    """A guard token calls the guard route only; an admin token may call it too."""
    [token] = parse_tokens("alertmanager:guard:" + "g" * 40)
    assert token.role is Role.GUARD
    assert [role for role in Role if Role.GUARD.allows(role)] == [Role.GUARD]
    assert [role for role in Role if role.allows(Role.GUARD)] == [Role.GUARD, Role.ADMIN]
    assert Role.ADMIN.allows(Role.READER) and not Role.CLIENT.allows(Role.READER)
