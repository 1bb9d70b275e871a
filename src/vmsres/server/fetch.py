"""FetchResource's download of a caller-supplied URL, made safe against server-side request forgery.

A URL from an API caller must never make vmsres reach what only vmsres can reach: its own loopback
services, the private network around it, or a cloud's instance-metadata endpoint. So every hop's host
is resolved here, every address it resolves to must be public (unless the operator allow-listed the
host), and the connection then goes to exactly the address that was vetted. This module knows
nothing of HTTP routing or SQL; it raises the wire errors of vmsres.protocol.errors.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import httpx

from vmsres.protocol.errors import EmptyResourceBody, InvalidParameter, ResourceSizeOverLimit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_USER_AGENT = "vmsres-fetch/1 (FetchResource)"
# `vmsres serve --fetch-allow-host` as an environment variable (every serve option has one).
FETCH_ALLOW_HOST_ENV = "VMSRES_FETCH_ALLOW_HOST"


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int = 5 * 1024 * 1024
    timeout_seconds: float = 20.0  # whole fetch, including DNS and redirects
    max_redirects: int = 3


# --- which addresses are public ----------------------------------------------------------------

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Our own table rather than ipaddress's is_private/is_global: those changed between Python releases
# (3.11.10, 3.12.4, 3.13) and disagree on multicast and on IPv4-mapped IPv6.
_V4_NOT_PUBLIC: tuple[ipaddress.IPv4Network, ...] = (
    _V4("0.0.0.0/8"),  # "this network", including the unspecified 0.0.0.0
    _V4("10.0.0.0/8"),  # private
    _V4("100.64.0.0/10"),  # shared CGNAT space; holds 100.100.100.200, Alibaba/Volcengine-style metadata
    _V4("127.0.0.0/8"),  # loopback
    _V4("169.254.0.0/16"),  # link-local; holds 169.254.169.254, the AWS/GCP/Azure/OpenStack metadata
    _V4("172.16.0.0/12"),  # private
    _V4("192.0.0.0/24"),  # IETF protocol assignments; holds 192.0.0.192, Oracle Cloud metadata
    _V4("192.0.2.0/24"),  # documentation (TEST-NET-1)
    _V4("192.88.99.0/24"),  # deprecated 6to4 relay anycast
    _V4("192.168.0.0/16"),  # private
    _V4("198.18.0.0/15"),  # benchmarking
    _V4("198.51.100.0/24"),  # documentation (TEST-NET-2)
    _V4("203.0.113.0/24"),  # documentation (TEST-NET-3)
    _V4("224.0.0.0/4"),  # multicast
    _V4("240.0.0.0/4"),  # reserved, including the limited broadcast 255.255.255.255
    # A public-range address that is nonetheless a platform endpoint: Azure's WireServer, reachable
    # only from inside an Azure VM.
    _V4("168.63.129.16/32"),
)

_V6_NOT_PUBLIC: tuple[ipaddress.IPv6Network, ...] = (
    _V6("2001::/23"),  # IETF protocol assignments (Teredo, 2001::/32, is looked into first)
    _V6("2001:db8::/32"),  # documentation
    _V6("3fff::/20"),  # documentation (RFC 9637)
    # Everything outside 2000::/3 is refused anyway; these are named for whoever reads the table.
    _V6("64:ff9b:1::/48"),  # local-use IPv4/IPv6 translation
    _V6("100::/64"),  # discard-only
    _V6("fc00::/7"),  # unique local; holds fd00:ec2::254, the AWS IPv6 metadata endpoint
    _V6("fe80::/10"),  # link-local
    _V6("fec0::/10"),  # deprecated site-local
    _V6("ff00::/8"),  # multicast
)

# The only IPv6 space handed out for global unicast today.
_V6_GLOBAL_UNICAST = _V6("2000::/3")

_V6_MAPPED = _V6("::ffff:0:0/96")  # IPv4-mapped
_V6_TRANSLATED = _V6("::ffff:0:0:0/96")  # SIIT IPv4-translated
_V6_COMPATIBLE = _V6("::/96")  # deprecated IPv4-compatible, also holds :: and ::1
_V6_NAT64 = _V6("64:ff9b::/96")  # well-known NAT64 prefix
_V6_6TO4 = _V6("2002::/16")
_V6_TEREDO = _V6("2001::/32")


def _last_32_bits(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)


def _is_public_v4(ip: ipaddress.IPv4Address) -> bool:
    return not any(ip in network for network in _V4_NOT_PUBLIC)


def is_public_address(ip: IPAddress) -> bool:
    """True only for an address that is globally reachable unicast and no platform endpoint.

    IPv6 forms that carry an IPv4 address (mapped, translated, compatible, NAT64, 6to4, Teredo) are
    judged by the IPv4 address they lead to, because that is where a packet ends up.
    """
    if isinstance(ip, ipaddress.IPv4Address):
        return _is_public_v4(ip)
    if ip.scope_id:
        # A zone index only means something for link- or site-scoped addresses.
        return False
    if ip in _V6_MAPPED or ip in _V6_TRANSLATED or ip in _V6_COMPATIBLE or ip in _V6_NAT64:
        return _is_public_v4(_last_32_bits(ip))
    if ip in _V6_6TO4:
        embedded = ip.sixtofour
        return embedded is not None and _is_public_v4(embedded)
    if ip in _V6_TEREDO:
        teredo = ip.teredo
        return teredo is not None and all(_is_public_v4(part) for part in teredo)
    if any(ip in network for network in _V6_NOT_PUBLIC):
        return False
    return ip in _V6_GLOBAL_UNICAST


# --- hosts and the allow-list ------------------------------------------------------------------


def _normalize_host(host: str) -> str:
    """One spelling per host, so that the allow-list matches however the URL wrote it."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host.rstrip(".")


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def vet_addresses(host: str, addresses: Sequence[IPAddress], allow_hosts: Iterable[str] = ()) -> None:
    """Raise InvalidParameter("Url") unless ``host`` is allow-listed or every address is public.

    Any one non-public address refuses the host: the connection may land on any of them, and a name
    that mixes public and private answers is the usual shape of a rebinding attack.
    """
    if _normalize_host(host) in {_normalize_host(allowed) for allowed in allow_hosts}:
        return
    if not addresses:
        raise EmptyResourceBody("the URL's host did not resolve to any address")
    if not all(is_public_address(address) for address in addresses):
        # The address itself stays out of the message: it would turn the API into a probe of our
        # internal DNS. The host is the caller's own; the option tells an operator what to do.
        raise InvalidParameter(
            "Url",
            "It is a refused destination: its host is not a public address. To fetch from a "
            "private or loopback host you trust, the server's operator allows it with "
            f"`vmsres serve --fetch-allow-host {host}` (environment variable {FETCH_ALLOW_HOST_ENV}).",
        )


async def _resolve(host: str, port: int) -> list[IPAddress]:
    literal = _ip_literal(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise EmptyResourceBody(f"the URL's host could not be resolved ({exc})") from None
    addresses: list[IPAddress] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
        if family == socket.AF_INET6 and len(sockaddr) >= 4 and sockaddr[3]:
            # A zoned (link-local) answer: keep the zone so is_public_address refuses it.
            address = ipaddress.IPv6Address(f"{address}%{sockaddr[3]}")
        if address not in addresses:
            addresses.append(address)
    return addresses


# Longer URLs are refused outright (browsers and proxies commonly stop near here too).
MAX_URL_CHARS = 2048
# A DNS name: dot-separated labels of letters, digits, hyphens (and underscores, which real
# hosts use), none longer than 63, the whole at most 253; IDNs arrive here already in punycode.
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")


def _valid_host(host: str) -> bool:
    if host.startswith("["):
        return host.endswith("]") and _ip_literal(host[1:-1].partition("%")[0]) is not None
    name = host.lower().rstrip(".")
    return 0 < len(name) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in name.split("."))


def _parse_url(raw: str, what: str = "It") -> httpx.URL:
    """``raw`` as an http(s) URL with a well-formed host and port; InvalidParameter("Url") if not.

    ``what`` starts the message: "It" for the caller's URL, "It redirects to a URL that" for a
    redirect's Location, so the caller can tell which one was wrong.
    """
    if len(raw) > MAX_URL_CHARS:
        raise InvalidParameter("Url", f"{what} is longer than {MAX_URL_CHARS} characters.")
    try:
        url = httpx.URL(raw.strip())
        port = url.port
        host = url.raw_host.decode("ascii")
        netloc = url.netloc.decode("ascii")
    except (httpx.InvalidURL, TypeError, ValueError, UnicodeError):
        raise InvalidParameter("Url", f"{what} is not a valid URL.") from None
    if url.scheme not in _DEFAULT_PORTS:
        scheme = url.scheme or "(none)"
        raise InvalidParameter(
            "Url", f"{what} uses the scheme {scheme!r}: only http and https can be fetched."
        )
    if not host:
        raise InvalidParameter("Url", f"{what} has no host.")
    bracketed = f"[{host}]" if ":" in host else host
    if not _valid_host(bracketed) or not netloc:
        raise InvalidParameter("Url", f"{what} has a malformed host.")
    if port is not None and not 1 <= port <= 65535:
        raise InvalidParameter("Url", f"{what} has a port out of range.")
    return url


def _redirect_target(current: httpx.URL, location: str) -> httpx.URL:
    """Where a redirect's ``Location`` leads, relative to ``current``; InvalidParameter if nowhere."""
    what = "It redirects to a URL that"
    try:
        target = str(current.join(location).copy_with(fragment=None))
    except (httpx.InvalidURL, TypeError, ValueError, UnicodeError):
        raise InvalidParameter("Url", f"{what} is not valid.") from None
    return _parse_url(target, what)


def check_fetch_url(raw: str) -> None:
    """The URL checks that need no network (dry runs); the download checks addresses too."""
    _parse_url(raw)


# --- fetching ----------------------------------------------------------------------------------


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    # The system's trust store (which honours SSL_CERT_FILE / SSL_CERT_DIR) plus certifi's, so both a
    # private CA installed by the operator and the public web's CAs verify.
    context = ssl.create_default_context()
    try:
        import certifi
    except ImportError:  # pragma: no cover - httpx depends on certifi
        return context
    context.load_verify_locations(certifi.where())
    return context


async def fetch_audio(
    url: str,
    *,
    allow_hosts: frozenset[str] = frozenset(),
    limits: FetchLimits = FetchLimits(),
    ssl_context: ssl.SSLContext | None = None,
) -> bytes:
    """Download ``url`` (http or https) under ``limits`` and return its body.

    Raises InvalidParameter("Url") for a URL that is malformed, not http(s), or leads (directly or by a
    redirect) to a non-public address of a host not in ``allow_hosts``; ResourceSizeOverLimit for a
    body over ``limits.max_bytes``; EmptyResourceBody when the fetch times out, cannot connect, ends
    on a non-2xx status or yields no bytes. ``ssl_context`` replaces the default trust store (tests,
    or an operator's private CA).
    """
    allowed = frozenset(_normalize_host(host) for host in allow_hosts)
    context = ssl_context or _default_ssl_context()
    try:
        async with asyncio.timeout(limits.timeout_seconds):
            return await _fetch(url, allowed, limits, context)
    except TimeoutError:
        raise EmptyResourceBody(
            f"fetching the URL timed out after {limits.timeout_seconds:g} seconds"
        ) from None


async def _fetch(
    raw_url: str, allowed: frozenset[str], limits: FetchLimits, context: ssl.SSLContext
) -> bytes:
    current = _parse_url(raw_url)
    redirects = 0
    while True:
        host = current.raw_host.decode("ascii")
        port = current.port or _DEFAULT_PORTS[current.scheme]
        addresses = await _resolve(host, port)
        vet_addresses(host, addresses, allowed)
        outcome = await _fetch_hop(current, addresses, limits, context)
        if isinstance(outcome, bytes):
            return outcome
        if redirects >= limits.max_redirects:
            raise InvalidParameter("Url", "It leads to too many redirects.")
        redirects += 1
        current = _redirect_target(current, outcome)


async def _fetch_hop(
    url: httpx.URL, addresses: Sequence[IPAddress], limits: FetchLimits, context: ssl.SSLContext
) -> bytes | str:
    """GET ``url`` from one of its vetted ``addresses``: the body, or a redirect's Location."""
    host = url.raw_host.decode("ascii")
    headers = {
        # The request line and TLS go to the pinned IP, so the name the server expects travels here
        # (netloc has the port when it is not the default, and never the userinfo).
        "Host": url.netloc.decode("ascii"),
        "User-Agent": _USER_AGENT,
        "Accept": "*/*",
        # Audio does not compress; asking for identity keeps a decompression bomb out of the cap's way.
        "Accept-Encoding": "identity",
    }
    # Pinning: the URL handed to httpx names the vetted IP itself, so httpx never resolves the name
    # again and a DNS answer that changes after our check (rebinding) cannot redirect the connection.
    # For https the original name goes in the "sni_hostname" extension, which httpcore passes to TLS
    # as server_hostname: it is sent as SNI and the certificate is verified against it, not the IP.
    extensions: dict[str, str] = {}
    if url.scheme == "https" and _ip_literal(host) is None:
        extensions["sni_hostname"] = host
    # httpx parses a redirect's Location itself (to offer the next request) even when it follows
    # none, and fails on some with errors of its own (an IDNA error for `http://xn--a/`): the hook
    # takes the Location away before that, and _redirect_target judges it instead.
    locations: list[str] = []

    async def take_location(response: httpx.Response) -> None:
        location = response.headers.get("Location")
        if response.status_code in _REDIRECT_STATUSES and location:
            locations.append(location)
            del response.headers["Location"]

    last_error: Exception | None = None
    for address in addresses:
        if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
            continue  # only reachable through an allow-listed host; zoned URLs cannot be pinned
        pinned = url.copy_with(host=address.compressed, fragment=None)
        # A fresh client per hop: a pooled connection made for one name must never serve another
        # that happens to share the IP. trust_env=False because a proxy would resolve the name
        # itself, undoing the pinning (and .netrc credentials have no business here).
        async with httpx.AsyncClient(
            trust_env=False,
            follow_redirects=False,
            verify=context,
            timeout=httpx.Timeout(limits.timeout_seconds),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=0),
            event_hooks={"response": [take_location]},
        ) as client:
            try:
                async with client.stream("GET", pinned, headers=headers, extensions=extensions) as response:
                    if locations:
                        return locations[0]
                    return await _read_response(response, limits)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last_error = exc
                continue  # nothing was sent yet: the next vetted address may answer
            except httpx.TimeoutException:
                raise EmptyResourceBody("the URL's server stopped answering") from None
            except httpx.RequestError as exc:
                # Broken transfers, protocol violations, undecodable bodies.
                raise EmptyResourceBody(f"the transfer from the URL failed ({type(exc).__name__})") from None
    detail = f": {last_error}" if last_error is not None else ""
    raise EmptyResourceBody(f"could not connect to the URL's host{detail}")


async def _read_response(response: httpx.Response, limits: FetchLimits) -> bytes:
    if not 200 <= response.status_code < 300:
        raise EmptyResourceBody(f"the URL answered HTTP {response.status_code}")
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise ResourceSizeOverLimit(f"the URL's body is larger than {limits.max_bytes} bytes")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limits.max_bytes:
            # Leaving the stream context now closes the connection: the rest is never downloaded.
            raise ResourceSizeOverLimit(f"the URL's body is larger than {limits.max_bytes} bytes")
    if not body:
        raise EmptyResourceBody("the URL answered with an empty body")
    return bytes(body)
