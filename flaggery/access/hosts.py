"""The Host rule of an open loopback server (DNS rebinding).

A server that needs no token because it listens on loopback trusts that only this machine can
reach it. A web page can break that trust: its attacker points their own name at 127.0.0.1
(a DNS rebind), and the browser then sends the page's requests to this server as the page's
own origin, so neither CORS, SameSite cookies nor CSRF tokens stop it. What such a request
cannot hide is its ``Host``: the attacker's name. So such a server answers only requests whose
Host is ``localhost``, a 127.0.0.0/8 address or ``[::1]`` (any port), or a name listed in
FLAGGERY_ALLOWED_HOSTS; anything else gets 421 MisdirectedRequest. A request without a Host
(HTTP/1.0, which no browser sends) is answered.

A server with tokens, or on any other address, does not apply the rule: its tokens protect it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from flaggery.errors import MisdirectedRequest
from flaggery.settings import Settings, is_loopback

__all__ = ["HostRule"]

_LOOPBACK_NAMES = ("localhost", "localhost.")
_REMEMBERED = 256  # distinct Host values whose verdict is kept (the server's own few, normally)


class HostRule:
    """`allows` a Host header value; `for_settings` is None when the rule does not apply."""

    __slots__ = ("_names", "_verdicts")

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._names = frozenset((*_LOOPBACK_NAMES, *(name.lower() for name in names)))
        self._verdicts: dict[bytes, bool] = {}

    @classmethod
    def for_settings(cls, settings: Settings) -> HostRule | None:
        """The rule of a server open because it is on loopback (no named token), else None."""
        if settings.requires_tokens or not is_loopback(settings.host):
            return None
        return cls(settings.allowed_host_list)

    def allows(self, host: bytes) -> bool:
        """Whether a request with this Host value (``name[:port]``) is answered."""
        verdict = self._verdicts.get(host)
        if verdict is None:
            verdict = self._judge(host)
            if len(self._verdicts) < _REMEMBERED:
                self._verdicts[host] = verdict
        return verdict

    def allows_headers(self, headers: Iterable[tuple[bytes, bytes]]) -> bool:
        """`allows` for every Host header among ``headers`` (none: allowed)."""
        return all(self.allows(value) for name, value in headers if name == b"host")

    def check(self, headers: Iterable[tuple[bytes, bytes]]) -> None:
        """Raises MisdirectedRequest unless `allows_headers`."""
        if not self.allows_headers(headers):
            raise MisdirectedRequest(
                "This server needs no token because it listens on loopback, so it answers "
                "only requests addressed to localhost, 127.0.0.1 or [::1] (a guard against DNS "
                "rebinding). Add the name you use to FLAGGERY_ALLOWED_HOSTS, or configure "
                "FLAGGERY_TOKENS."
            )

    def _judge(self, host: bytes) -> bool:
        try:
            text = host.decode("ascii").strip().lower()
        except UnicodeDecodeError:
            return False
        if text.startswith("["):
            name, bracket, port = text[1:].partition("]")
            if not bracket or (port and not (port[0] == ":" and _is_port(port[1:]))):
                return False
            return _is_loopback_address(name)
        name, colon, port = text.rpartition(":")
        if not colon:
            name = text
        elif not _is_port(port):
            return False
        return name in self._names or _is_loopback_address(name)


def _is_port(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 5


def _is_loopback_address(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False
