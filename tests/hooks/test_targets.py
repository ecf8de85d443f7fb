"""The SSRF rule for webhook URLs (flaggery.store.webhook_targets), without a database."""

from __future__ import annotations

import ipaddress

import pytest

from flaggery.errors import WebhookTargetRefused
from flaggery.store.webhook_targets import TargetPolicy, parse_url, refusal, resolve

STRICT, LOOPBACK = TargetPolicy(), TargetPolicy(allow_loopback=True)
EVERYTHING = TargetPolicy(allow_loopback=True, allow_private=True)


@pytest.mark.parametrize(
    ("address", "strict", "loopback", "everything"),
    [
        ("93.184.216.34", True, True, True),
        ("2606:2800:220:1:248:1893:25c8:1946", True, True, True),
        ("127.0.0.1", False, True, True),
        ("127.8.9.10", False, True, True),
        ("::1", False, True, True),
        ("::ffff:127.0.0.1", False, True, True),
        ("10.0.0.1", False, False, True),
        ("172.16.5.4", False, False, True),
        ("192.168.1.1", False, False, True),
        ("100.64.0.1", False, False, True),
        ("fd00::1", False, False, True),
        ("169.254.169.254", False, False, False),
        ("::ffff:169.254.169.254", False, False, False),
        ("169.254.1.1", False, False, False),
        ("fe80::1", False, False, False),
        ("0.0.0.0", False, False, False),
        ("224.0.0.1", False, False, False),
        ("240.0.0.1", False, False, False),
    ],
)
def test_which_addresses_each_policy_allows(
    address: str, strict: bool, loopback: bool, everything: bool
) -> None:
    ip = ipaddress.ip_address(address)
    allowed = [refusal(ip, policy) is None for policy in (STRICT, LOOPBACK, EVERYTHING)]
    assert allowed == [strict, loopback, everything]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "file:///etc/passwd",
        "http:///nohost",
        "//example.com/x",
        "http://user:pw@example.com/",
        "http://example.com:99999/",
        "http://[::1/",
        "x" * 3000,
    ],
)
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(WebhookTargetRefused):
        parse_url(url)


async def test_every_resolved_address_is_checked_and_the_url_pinned() -> None:
    target = await resolve("http://localhost:8080/hook?x=1", LOOPBACK)
    assert ipaddress.ip_address(target.address).is_loopback
    assert target.pinned_url.endswith(":8080/hook?x=1") and "localhost" not in target.pinned_url
    with pytest.raises(WebhookTargetRefused, match="loopback"):
        await resolve("http://localhost:8080/hook", STRICT)
    v6 = await resolve("http://[::1]:9/h", LOOPBACK)
    assert v6.pinned_url == "http://[::1]:9/h"
    with pytest.raises(WebhookTargetRefused, match="does not resolve"):
        await resolve("http://no-such-host.invalid/", EVERYTHING)
