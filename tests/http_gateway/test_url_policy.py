"""The SSRF policy of POST /api/upload/url, unit by unit: URL checks, address classes, the
allowlist, the checking resolver and the pinned socket factory."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from aiohttp.abc import AbstractResolver

from http_gateway.config import GatewaySettings
from http_gateway.errors import engine_status
from http_gateway.url_policy import Pins, PolicyResolver, UrlPolicy, UrlRefused, parse_ip, why_not_public

DEFAULT = UrlPolicy()

REFUSED_URLS = [
    "http://127.0.0.1/v.mp4",
    "http://2130706433/v.mp4",  # decimal
    "http://0x7f000001/v.mp4",  # hex
    "http://0x7f.1/v.mp4",  # hex, short form
    "http://0177.0.0.1/v.mp4",  # octal
    "http://017700000001/v.mp4",  # octal, one number
    "http://127.1/v.mp4",
    "http://[::1]/v.mp4",
    "http://[::ffff:127.0.0.1]/v.mp4",  # IPv4-mapped IPv6
    "http://[::ffff:7f00:1]/v.mp4",
    "http://[::ffff:169.254.169.254]/",
    "http://0.0.0.0/v.mp4",
    "http://0/v.mp4",
    "http://[::]/v.mp4",
    "http://169.254.169.254/latest/meta-data/",  # AWS/GCP/Azure metadata
    "http://[fd00:ec2::254]/latest/meta-data/",  # AWS IPv6 metadata
    "http://100.100.100.200/latest/meta-data/",  # Alibaba metadata
    "http://10.0.0.5/v.mp4",
    "http://172.16.3.4/v.mp4",
    "http://192.168.1.1/v.mp4",
    "http://100.64.1.1/v.mp4",  # CGNAT
    "http://169.254.10.10/v.mp4",  # link-local
    "http://[fe80::1]/v.mp4",
    "http://[fc00::1]/v.mp4",  # unique local
    "http://224.0.0.1/v.mp4",  # multicast
    "http://[ff02::1]/v.mp4",
    "http://240.0.0.1/v.mp4",  # reserved
    "http://255.255.255.255/v.mp4",
    "http://[64:ff9b::7f00:1]/v.mp4",  # NAT64 of 127.0.0.1
    "http://[2002:a9fe:a9fe::]/x.mp4",  # 6to4 of 169.254.169.254
    "http://[2002:0a00:0001::1]/x.mp4",  # 6to4 of 10.0.0.1
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/x.mp4",  # Teredo, client 127.0.0.1
    "http://[fec0::1]/x.mp4",  # deprecated site-local
    "http://user:pass@example.com/v.mp4",  # userinfo
    "http://example.com@127.0.0.1/v.mp4",
    "http://example.com:8080/v.mp4",  # not a default port
    "https://example.com:22/v.mp4",
    "ftp://example.com/v.mp4",
    "file:///etc/passwd",
    "gopher://example.com/",
    "data:video/mp4;base64,AAAA",
    "javascript:alert(1)",
    "//example.com/v.mp4",
    "http:///v.mp4",
    "http://exa mple.com/v.mp4",
    "http://example.com/\r\nHost: evil",
    "http://example.com/" + "a" * 3000,
    "",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_default_policy_refuses(url):
    with pytest.raises(UrlRefused) as info:
        DEFAULT.check_url(url)
    assert engine_status(info.value) == 400 and info.value.message


@pytest.mark.parametrize("url", ["https://example.com/v.mp4", "http://93.184.216.34/v.mp4",
                                 "https://www.youtube.com/watch?v=abc", "http://[2606:4700::1111]/x"])
def test_public_urls_pass(url):
    target = DEFAULT.check_url(url)
    assert target.port in (80, 443) and target.scheme in ("http", "https")


@pytest.mark.parametrize(("spelling", "ip"), [
    ("2130706433", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("0x7f.1", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"), ("127.1", "127.0.0.1"), ("10.1", "10.0.0.1"), ("0", "0.0.0.0"),
    ("::ffff:127.0.0.1", "::ffff:7f00:1"), ("[::1]", "::1"),
])
def test_parse_ip_accepts_every_inet_aton_spelling(spelling, ip):
    assert parse_ip(spelling) == ipaddress.ip_address(ip)


@pytest.mark.parametrize("name", ["example.com", "1.2.3.4.5", "256.1.1.1", "08.1.1.1", "1..1", "media.test"])
def test_parse_ip_leaves_names_alone(name):
    assert parse_ip(name) is None


def test_reasons_name_the_class():
    assert why_not_public(ipaddress.ip_address("169.254.169.254")) == "a cloud metadata address"
    assert why_not_public(ipaddress.ip_address("100.100.100.200")) == "a cloud metadata address"
    assert why_not_public(ipaddress.ip_address("100.64.0.1")) == "a carrier-grade NAT address"
    assert why_not_public(ipaddress.ip_address("::ffff:8.8.8.8")) == "an IPv4-mapped IPv6 address"
    assert why_not_public(ipaddress.ip_address("8.8.8.8")) is None
    with pytest.raises(UrlRefused, match="loopback"):
        DEFAULT.check_url("http://2130706433/")


def test_allowlist_allows_listed_destinations_only():
    policy = UrlPolicy(["127.0.0.1", "10.1.0.0/16", "media.internal", "*.corp.example"], [80, 443, 8080])
    assert policy.check_url("http://127.0.0.1:8080/v.mp4").ip == ipaddress.ip_address("127.0.0.1")
    policy.check_url("http://10.1.2.3/v.mp4")
    with pytest.raises(UrlRefused, match="loopback"):
        policy.check_url("http://127.0.0.2/v.mp4")
    with pytest.raises(UrlRefused, match="private"):
        policy.check_url("http://10.2.0.1/v.mp4")
    policy.check_address(ipaddress.ip_address("192.168.1.5"), "media.internal")
    policy.check_address(ipaddress.ip_address("192.168.1.5"), "cdn.corp.example")
    with pytest.raises(UrlRefused):
        policy.check_address(ipaddress.ip_address("192.168.1.5"), "other.example")
    with pytest.raises(UrlRefused, match="metadata"):  # a listed name never unlocks metadata
        policy.check_address(ipaddress.ip_address("169.254.169.254"), "media.internal")
    with pytest.raises(UrlRefused, match="port 9000"):
        policy.check_url("http://127.0.0.1:9000/")


def test_settings_parse_the_allowlist_and_ports():
    s = GatewaySettings.from_env({"CLIPORA_URL_ALLOWLIST": "127.0.0.1, media.test ,10.0.0.0/8",
                                  "CLIPORA_URL_PORTS": "80,443,8081", "CLIPORA_MAX_DURATION_S": "60"})
    assert s.url_allowlist == ("127.0.0.1", "media.test", "10.0.0.0/8")
    assert s.url_ports == (80, 443, 8081) and s.max_duration_s == 60
    assert GatewaySettings().url_allowlist == () and GatewaySettings().max_duration_s == 4 * 3600
    with pytest.raises(ValueError, match="CLIPORA_URL_PORTS"):
        GatewaySettings.from_env({"CLIPORA_URL_PORTS": "80,70000"})


class StubResolver(AbstractResolver):
    """Answers from a script: each call pops the next list of addresses (a rebinding DNS)."""

    def __init__(self, answers: list[list[str]]) -> None:
        self.answers = answers
        self.calls = 0

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET):
        addrs = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return [{"hostname": host, "host": a, "port": port, "family": socket.AF_INET6 if ":" in a else socket.AF_INET,
                 "proto": 0, "flags": socket.AI_NUMERICHOST} for a in addrs]

    async def close(self) -> None:
        pass


async def test_resolver_refuses_a_name_when_any_address_is_refused():
    pins = Pins()
    resolver = PolicyResolver(DEFAULT, pins, StubResolver([["93.184.216.34", "127.0.0.1"]]))
    with pytest.raises(UrlRefused, match=r"^URL refused: media\.test resolves to a loopback address$"):
        await resolver.resolve("media.test", 80)
    assert ipaddress.ip_address("93.184.216.34") not in pins  # nothing of a refused answer is pinned


async def test_resolver_pins_exactly_what_it_checked():
    pins = Pins()
    resolver = PolicyResolver(DEFAULT, pins, StubResolver([["93.184.216.34"], ["127.0.0.1"]]))
    first = await resolver.resolve("media.test", 80)
    assert [r["host"] for r in first] == ["93.184.216.34"]
    with pytest.raises(UrlRefused):  # the rebinding answer is checked again, not trusted
        await resolver.resolve("media.test", 80)
    assert ipaddress.ip_address("127.0.0.1") not in pins


def test_socket_factory_connects_only_to_pinned_addresses():
    pins = Pins()
    pins.add(ipaddress.ip_address("93.184.216.34"))
    sock = pins.socket_factory((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 80)))
    sock.close()
    with pytest.raises(PermissionError, match="127.0.0.1"):
        pins.socket_factory((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 80)))
