"""Which proxies in front of the gateway are trusted, and so who the client is.

``CLIPORA_TRUSTED_PROXIES`` is either a count (how many proxies stand in front of the gateway; the
nearest is the connection's peer) or a comma-separated list of addresses/CIDRs of proxies. Each
trusted proxy must *append* the address it received the connection from to ``X-Forwarded-For``
(nginx ``$proxy_add_x_forwarded_for``, HAProxy ``option forwardfor``, Caddy and Traefik by
default). The client is then the rightmost address that no trusted proxy owns: whatever a client
writes into the header itself stays to the left of it and is never taken. ``CLIPORA_TRUST_PROXY=1``
is the same as a count of 1.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class TrustedProxies:
    count: int = 0
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, raw: str) -> TrustedProxies:
        raw = raw.strip()
        if not raw:
            return cls()
        if raw.isdigit():
            return cls(count=int(raw))
        nets = []
        for part in raw.split(","):
            part = part.strip()
            try:
                nets.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"CLIPORA_TRUSTED_PROXIES: {part!r} is neither a proxy count nor an address/CIDR") \
                    from None
        return cls(networks=tuple(nets))

    def __bool__(self) -> bool:
        return self.count > 0 or bool(self.networks)

    def _owned(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.networks)

    def client(self, peer: str | None, forwarded_for: str) -> str:
        """The client's address given the connection's peer and the X-Forwarded-For header."""
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()] + [peer or "unknown"]
        if self.count:
            return hops[-(self.count + 1)] if len(hops) > self.count else hops[0]
        if self.networks:
            for hop in reversed(hops):
                if not self._owned(hop):
                    return hop
            return hops[0]
        return peer or "unknown"
