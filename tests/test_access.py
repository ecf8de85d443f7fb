"""flaggery.access without a server: the one credential rule, the keyring, the failed-attempt
limit, and the secrets a server off loopback accepts (issue 18, item 3; issue 24 section 3)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from flaggery.access import FailedAttempts, Keyring, presented_secret
from flaggery.access.attempts import FAILURE_BURST, MAX_ADDRESSES, REFILL_SECONDS
from flaggery.cli import main
from flaggery.errors import AmbiguousCredentials, Unauthorized
from flaggery.settings import Settings, SettingsError
from flaggery.tokens import Role

STRONG = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("headers", "secret"),
    [
        ([], None),
        ([(b"authorization", b"Bearer s")], b"s"),
        ([(b"authorization", b" bEaReR   s ")], b"s"),
        ([(b"x-api-key", b" s ")], b"s"),
        ([(b"x-api-key", b"k"), (b"authorization", b"Bearer s")], b"s"),
        ([(b"x-api-key", b"")], None),
    ],
)
def test_the_credential_rule(headers: list[tuple[bytes, bytes]], secret: bytes | None) -> None:
    assert presented_secret(headers) == secret


@pytest.mark.parametrize("name", [b"authorization", b"x-api-key"])
def test_two_headers_of_a_kind_are_ambiguous(name: bytes) -> None:
    with pytest.raises(AmbiguousCredentials):
        presented_secret([(name, b"Bearer a"), (name, b"Bearer a")])


@pytest.mark.parametrize("value", [b"Basic czM=", b"Bearer", b"Bearer   ", b"Bearers"])
def test_other_schemes_and_empty_tokens_are_unauthorized(value: bytes) -> None:
    with pytest.raises(Unauthorized):
        presented_secret([(b"authorization", value)])


def test_the_keyring_holds_every_secret_once() -> None:
    keyring = Keyring(Settings(tokens="a:admin:one b:reader:two", client_tokens="three,four"))
    assert keyring.find(b"two") == keyring.tokens[1]
    found = keyring.find(b"four")
    assert found is not None and (found.name, found.role) == ("client-token-2", Role.CLIENT)
    assert keyring.find(b"tw") is None and keyring.find(b"") is None
    assert keyring.clients_required


def test_failures_are_limited_per_address_and_refill() -> None:
    clock = Clock()
    attempts = FailedAttempts(clock)
    for _ in range(FAILURE_BURST):
        assert attempts.retry_after("10.0.0.1") is None
        attempts.failed("10.0.0.1")
    assert attempts.retry_after("10.0.0.1") == REFILL_SECONDS
    assert attempts.retry_after("10.0.0.2") is None  # another address is not affected
    clock.now += REFILL_SECONDS
    assert attempts.retry_after("10.0.0.1") is None  # one more attempt has refilled
    attempts.failed("10.0.0.1")
    assert attempts.retry_after("10.0.0.1") is not None


def test_the_table_of_addresses_is_bounded() -> None:
    attempts = FailedAttempts(Clock())
    for number in range(MAX_ADDRESSES + 5):
        attempts.failed(f"address-{number}")
    assert len(attempts._buckets) == MAX_ADDRESSES


@pytest.mark.parametrize(
    "settings",
    [
        {"admin_token": "k9"},
        {"tokens": "boss:admin:k9"},
        {"tokens": f"ok:admin:{STRONG} grafana:reader:short"},
        {"tokens": "boss:admin:" + "ab" * 20},  # long, but two different characters
    ],
)
def test_weak_secrets_are_refused_off_loopback(settings: dict[str, Any]) -> None:
    with pytest.raises(SettingsError, match="weak secret") as refused:
        Settings(host="0.0.0.0", admin_mode=True, **settings).check_exposure()
    assert "k9" not in str(refused.value) and "short" not in str(refused.value)
    Settings(host="127.0.0.1", admin_mode=True, **settings).check_exposure()  # loopback: fine


def test_strong_secrets_and_client_tokens_are_accepted_off_loopback() -> None:
    Settings(
        host="0.0.0.0", admin_mode=True, admin_token=STRONG, client_tokens="app-key"
    ).check_exposure()
    Settings(host="0.0.0.0", tokens=f"edge:reader:{STRONG} app:client:k").check_exposure()


def test_a_malformed_entry_is_named_by_its_position_only() -> None:
    pasted = "the-secret-pasted-alone"
    with pytest.raises(SettingsError) as refused:
        Settings(tokens=f"ok:admin:{STRONG} {pasted}")
    assert "token entry 2" in str(refused.value) and pasted not in str(refused.value)
    with pytest.raises(SettingsError) as refused:
        Settings(tokens=f"bad!name:admin:{pasted}")
    assert "token entry 1" in str(refused.value) and "bad!name" not in str(refused.value)


def test_the_command_refuses_a_weak_secret_at_start(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in [v for v in os.environ if v.startswith("FLAGGERY_")]:
        monkeypatch.delenv(variable)
    monkeypatch.setenv("FLAGGERY_TOKENS", "boss:admin:k9")
    assert main(["--admin", "--host", "0.0.0.0"]) == 2
    error = capsys.readouterr().err
    assert "weak secret" in error and "'boss'" in error and "k9" not in error
