"""Where a webhook may be sent: the server-side request forgery (SSRF) rule.

A token-holder who creates a subscription chooses a URL the admin server then calls, so the
URL must not reach what only the server can: the cloud metadata address (169.254.169.254) and
the rest of link-local, unspecified, multicast and reserved addresses are always refused;
loopback and private ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7, ...) are refused
unless a setting allows them (FLAGGERY_WEBHOOK_ALLOW_LOOPBACK, FLAGGERY_WEBHOOK_ALLOW_PRIVATE).

The host is resolved and every address it resolves to is checked, when the subscription is
created and again before every delivery (a name may point elsewhere later: DNS rebinding). The
delivery then connects to the address that was checked (flaggery.hooks.sending), never to a
second resolution.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from flaggery.errors import WebhookTargetRefused

__all__ = ["MAX_URL_LENGTH", "Target", "TargetPolicy", "parse_url", "refusal", "resolve"]

MAX_URL_LENGTH = 2000
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class TargetPolicy:
    allow_loopback: bool = False
    """Allow 127.0.0.0/8 and ::1 (a receiver on the admin's own machine; tests)."""
    allow_private: bool = False
    """Allow private and shared ranges (a receiver on the internal network)."""


@dataclass(frozen=True)
class Target:
    """A URL whose host resolved to ``address``, which the policy allows."""

    url: SplitResult
    host: str
    address: str

    @property
    def pinned_url(self) -> str:
        """The URL with its host replaced by the checked address (the port kept)."""
        address = f"[{self.address}]" if ":" in self.address else self.address
        port = f":{self.url.port}" if self.url.port is not None else ""
        return self.url._replace(netloc=f"{address}{port}").geturl()


def refusal(address: Address, policy: TargetPolicy) -> str | None:
    """Why ``address`` may not be reached under ``policy``, or None if it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_link_local:
        return "link-local (169.254.0.0/16, fe80::/10: the cloud metadata address among them)"
    if address.is_loopback:  # before reserved: ::1 lies in the reserved ::/8
        return None if policy.allow_loopback else "loopback (FLAGGERY_WEBHOOK_ALLOW_LOOPBACK)"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return "unspecified, multicast or reserved"
    if address.is_private or not address.is_global:
        return None if policy.allow_private else "private (FLAGGERY_WEBHOOK_ALLOW_PRIVATE)"
    return None


def parse_url(url: str) -> SplitResult:
    """``url`` split, if it is an absolute http(s) URL with a host and no credentials."""
    if not isinstance(url, str) or len(url) > MAX_URL_LENGTH:
        raise WebhookTargetRefused(
            f"A webhook URL is a string of at most {MAX_URL_LENGTH} characters."
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise WebhookTargetRefused(f"The webhook URL {url[:100]!r} does not parse.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookTargetRefused(
            f"A webhook URL is http:// or https:// with a host, got {url[:100]!r}."
        )
    if parts.username is not None or parts.password is not None:
        raise WebhookTargetRefused("A webhook URL may not hold credentials: the secret signs it.")
    return parts


async def resolve(url: str, policy: TargetPolicy) -> Target:
    """The target of ``url``: its host resolved, every address checked. Raises WebhookTargetRefused
    naming the address and why; a host that does not resolve is refused too."""
    parts = parse_url(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise WebhookTargetRefused(
            f"The webhook host {host!r} does not resolve: {error}."
        ) from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    for address in addresses:
        reason = refusal(address, policy)
        if reason is not None:
            raise WebhookTargetRefused(
                f"The webhook host {host!r} resolves to {address}, which is {reason}: refused."
            )
    if not addresses:
        raise WebhookTargetRefused(f"The webhook host {host!r} resolves to no address.")
    return Target(parts, host, str(addresses[0]))
