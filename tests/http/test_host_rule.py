"""The Host rule of an open loopback server (issue 18, item 2: DNS rebinding): a server with no
token on loopback answers only requests addressed to a loopback name or address, or a name of
FLAGGERY_ALLOWED_HOSTS; every entry point alike (REST, the dashboard, OFREP, the flags route).
The fast path over a real socket: tests/http/test_direct_flags.py."""

from __future__ import annotations

import pytest

from flaggery.access import HostRule
from flaggery.settings import Settings, SettingsError
from tests.http.conftest import MakeClient
from tests.http.helpers import fails, ok

REBOUND = {"Host": "rebind.attacker.example:8000"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/features/x"),
        ("GET", "/v1/features"),
        ("GET", "/v1/subjects/1/flags"),
        ("GET", "/v1/changes"),
        ("GET", "/ui/features"),
        ("POST", "/ui/features"),
        ("POST", "/ofrep/v1/evaluate/flags"),
        ("GET", "/healthz"),
    ],
)
async def test_an_open_loopback_server_refuses_other_hosts(
    make_client: MakeClient, method: str, path: str
) -> None:
    client = await make_client()
    message = fails(await client.request(method, path, headers=REBOUND), 421, "MisdirectedRequest")
    assert "FLAGGERY_ALLOWED_HOSTS" in message
    assert ok(await client.get("/v1/features"))["features"] == []  # nothing was written


@pytest.mark.parametrize(
    "host",
    ["localhost", "localhost:8000", "127.0.0.1:8000", "127.9.8.7", "[::1]:8000", "LOCALHOST"],
)
async def test_loopback_names_and_addresses_are_answered(
    make_client: MakeClient, host: str
) -> None:
    client = await make_client()
    ok(await client.post("/v1/features/x", headers={"Host": host}), 201)


async def test_a_setting_adds_names(make_client: MakeClient) -> None:
    client = await make_client(allowed_hosts="flaggery.local, dev-box")
    for host in ("flaggery.local:8000", "dev-box"):
        ok(await client.get("/v1/features", headers={"Host": host}))
    fails(await client.get("/v1/features", headers=REBOUND), 421, "MisdirectedRequest")


async def test_a_server_with_tokens_does_not_apply_it(make_client: MakeClient) -> None:
    client = await make_client(admin_token="s3cret")
    headers = {**REBOUND, "Authorization": "Bearer s3cret"}
    ok(await client.post("/v1/features/x", headers=headers), 201)


@pytest.mark.parametrize(
    "host",
    [
        b"rebind.example",
        b"127.0.0.1.rebind.example",
        b"localhost.rebind.example:80",
        b"[::1",
        b"[::1]x",
        b"[::2]:80",
        b"localhost:x",
        b"10.0.0.1",
        b"\xff",
        b"",
    ],
)
def test_other_hosts_are_refused(host: bytes) -> None:
    assert not HostRule().allows(host)


def test_the_rule_applies_only_to_an_open_loopback_server() -> None:
    assert HostRule.for_settings(Settings()) is not None
    assert HostRule.for_settings(Settings(host="::1")) is not None
    assert HostRule.for_settings(Settings(host="0.0.0.0")) is None
    assert HostRule.for_settings(Settings(tokens="a:admin:s")) is None


@pytest.mark.parametrize("names", ["a.example:80", "http://a.example", "a b"])
def test_allowed_hosts_are_names(names: str) -> None:
    with pytest.raises(SettingsError, match="FLAGGERY_ALLOWED_HOSTS"):
        Settings(allowed_hosts=names)
