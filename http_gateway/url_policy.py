"""Which URLs the server may fetch for POST /api/upload/url: the SSRF policy.

The server fetches user-supplied URLs, so every destination is checked where it is decided:

1. at submit, :meth:`UrlPolicy.check_url` refuses what the URL alone gives away (scheme other
   than http/https, userinfo, a port outside ``CLIPORA_URL_PORTS``, an IP literal in any of the
   spellings resolvers accept: ``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``[::ffff:127.0.0.1]``);
2. at connect, :class:`PolicyResolver` resolves a name once, checks *every* address it returns
   and hands exactly those to aiohttp; :class:`Pins` remembers them and the connector's socket
   factory refuses to connect anywhere else (IP literals skip resolvers, so they are pinned
   by step 1). No address is looked up twice, so a name that rebinds between check and
   connect cannot slip through;
3. every redirect hop goes through 1 and 2 again (the fetchers follow redirects themselves).

Refused: loopback, private, link-local, CGNAT, multicast, unspecified, reserved, IPv4-mapped
IPv6, NAT64 to a non-public IPv4, and the cloud metadata addresses. ``CLIPORA_URL_ALLOWLIST``
(hostnames, ``*.suffix`` wildcards, IPs, CIDRs) lets an operator allow listed destinations;
a listed hostname never unlocks a metadata address (list the IP itself for that).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from engine.errors import PermanentError

log = logging.getLogger("clipora.gateway.urls")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200"))
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
MAX_URL = 2048


class UrlRefused(PermanentError):
    """The URL or one of its destinations is not allowed (HTTP 400 at submit)."""


def parse_ip(host: str) -> IPAddress | None:
    """``host`` as an IP address, in every spelling inet_aton() accepts, else None.

    ``http://2130706433/`` and ``http://0x7f.1/`` reach 127.0.0.1 through getaddrinfo, so
    they are IP literals too, whatever ``ipaddress`` thinks.
    """
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or any(p == "" for p in parts):
        return None
    nums = []
    for p in parts:
        try:
            if p[:2].lower() == "0x":
                nums.append(int(p[2:] or "0", 16))
            elif len(p) > 1 and p[0] == "0":
                nums.append(int(p[1:], 8))
            else:
                nums.append(int(p, 10))
        except ValueError:
            return None
    *head, last = nums
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(nums)):
        return None
    value = 0
    for n in head:
        value = value << 8 | n
    value = value << 8 * (5 - len(nums)) | last
    return ipaddress.IPv4Address(value)


def why_not_public(ip: IPAddress) -> str | None:
    """Why ``ip`` is no destination for a user-supplied URL, or None when it is public."""
    if ip in METADATA:
        return "a cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address"
        for net in NAT64:
            if ip in net and why_not_public(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)):
                return "a NAT64 address of a non-public IPv4 address"
        # 6to4 (2002::/16) and Teredo (2001::/32) carry an IPv4 address inside; Python < 3.11.10
        # (CVE-2024-4032) still calls them global, so the embedded address is checked here
        if ip.sixtofour is not None and why_not_public(ip.sixtofour):
            return "a 6to4 address of a non-public IPv4 address"
        if ip.teredo is not None and any(why_not_public(v4) for v4 in ip.teredo):
            return "a Teredo address of a non-public IPv4 address"
        if ip.is_site_local:
            return "a site-local address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in CGNAT:
        return "a carrier-grade NAT address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved or not ip.is_global:
        return "a reserved address"
    return None


@dataclass(frozen=True)
class Target:
    """A checked URL: scheme, normalized host, port, and the IP when the host is a literal."""

    url: URL
    scheme: str
    host: str
    port: int
    ip: IPAddress | None


class UrlPolicy:
    """The operator's policy (allowlist, ports) and the checks of the module docstring."""

    def __init__(self, allowlist: Iterable[str] = (), ports: Iterable[int] = (80, 443)) -> None:
        self.networks: list[IPNetwork] = []
        self.hosts: set[str] = set()
        self.suffixes: list[str] = []
        for raw in allowlist:
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if entry.startswith("*."):
                self.suffixes.append(entry[1:])
            else:
                self.hosts.add(entry)
        self.ports = frozenset(ports)

    def host_listed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return host in self.hosts or any(host.endswith(s) for s in self.suffixes)

    def check_address(self, ip: IPAddress, host: str) -> None:
        """Raise UrlRefused unless a connection to ``ip`` (reached as ``host``) is allowed."""
        if any(ip.version == net.version and ip in net for net in self.networks):
            return
        reason = why_not_public(ip)
        if reason is None or (self.host_listed(host) and ip not in METADATA):
            return
        if host == str(ip):
            raise UrlRefused(f"URL refused: {host} is {reason}")
        # the resolved address stays in the server log: users must not map internal names
        log.info("URL refused: %s resolves to %s, %s", host, ip, reason)
        raise UrlRefused(f"URL refused: {host} resolves to {reason}")

    def check_url(self, raw: str) -> Target:
        """Everything decidable from the URL itself; raises UrlRefused with the reason."""
        if not isinstance(raw, str) or not raw.strip():
            raise UrlRefused("url must be a non-empty string")
        if len(raw) > MAX_URL:
            raise UrlRefused(f"url is longer than {MAX_URL} characters")
        if any(ord(c) < 0x21 or ord(c) == 0x7F for c in raw.strip()):
            raise UrlRefused("url must not contain spaces or control characters")
        try:
            url = URL(raw.strip())
        except (ValueError, TypeError):
            raise UrlRefused("url is not a valid URL") from None
        scheme = (url.scheme or "").lower()
        if scheme not in ("http", "https"):
            raise UrlRefused("URL refused: only http and https URLs can be fetched")
        if url.raw_user is not None or url.raw_password is not None or "@" in (url.raw_authority or ""):
            raise UrlRefused("URL refused: user names and passwords in URLs are not accepted")
        host = (url.host or "").lower().rstrip(".")
        if not host:
            raise UrlRefused("URL refused: the URL has no host")
        try:
            port = url.port
        except ValueError:
            raise UrlRefused("URL refused: the port is not a number") from None
        if port is None or port not in self.ports:
            allowed = ", ".join(str(p) for p in sorted(self.ports))
            raise UrlRefused(f"URL refused: port {port} is not allowed (allowed: {allowed})")
        ip = parse_ip(host)
        if ip is not None:
            self.check_address(ip, host)
            host = str(ip)
        return Target(url, scheme, host, port, ip)

    def check_authority(self, authority: str) -> Target:
        """A proxy CONNECT target ``host:port``, checked like an https URL."""
        return self.check_url(f"https://{authority}/")


class Pins:
    """The addresses the policy approved for one fetch; the only ones its sockets may connect to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ips: set[IPAddress] = set()

    def add(self, ip: IPAddress) -> None:
        with self._lock:
            self._ips.add(ip)

    def __contains__(self, ip: object) -> bool:
        with self._lock:
            return ip in self._ips

    def socket_factory(self, addr_info: tuple[Any, ...]) -> socket.socket:
        """aiohttp's ``socket_factory``: a socket, only for an address the policy pinned."""
        family, type_, proto, _, sockaddr = addr_info
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in self:
            raise PermissionError(f"connection to {ip} refused: the address was not checked by the URL policy")
        return socket.socket(family=family, type=type_, proto=proto)


class PolicyResolver(AbstractResolver):
    """Resolves once, refuses the name if any address is refused, pins what it returns."""

    def __init__(self, policy: UrlPolicy, pins: Pins, base: AbstractResolver | None = None) -> None:
        self.policy = policy
        self.pins = pins
        self.base = base or ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        try:
            infos = await self.base.resolve(host, port, family)
        except OSError as exc:
            raise OSError(f"could not resolve {host}: {exc.strerror or exc}") from None
        if not infos:
            raise OSError(f"could not resolve {host}")
        checked = [(info, ipaddress.ip_address(info["host"].split("%", 1)[0])) for info in infos]
        for _, ip in checked:
            self.policy.check_address(ip, host)
        for _, ip in checked:
            self.pins.add(ip)
        return [info for info, _ in checked]

    async def close(self) -> None:
        await self.base.close()


async def resolve_checked(policy: UrlPolicy, target: Target, pins: Pins,
                          base: AbstractResolver | None = None) -> list[IPAddress]:
    """The checked, pinned addresses of ``target`` (resolving its name once when it is one)."""
    if target.ip is not None:
        pins.add(target.ip)
        return [target.ip]
    resolver = PolicyResolver(policy, pins, base)
    try:
        infos = await resolver.resolve(target.host, target.port, socket.AF_UNSPEC)
    finally:
        if base is None:
            await resolver.close()
    return [ipaddress.ip_address(i["host"].split("%", 1)[0]) for i in infos]
