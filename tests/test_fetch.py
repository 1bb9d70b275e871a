"""FetchResource's SSRF-safe download: the address classifier, then fetches against loopback servers only.

Every connection these tests make goes to 127.0.0.0/8 or ::1. Names that are not "localhost" are test
names (*.vmsres.test) that a patched socket.getaddrinfo answers with loopback addresses; it stands in
for DNS, whose answers (including a rebinding one) a test cannot otherwise choose.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.servers import skip_unless_ci
from vmsres.protocol.errors import EmptyResourceBody, InvalidParameter, ResourceSizeOverLimit
from vmsres.server.fetch import FetchLimits, fetch_audio, is_public_address, vet_addresses

AUDIO = b"ID3\x04\x00\x00" + bytes(range(256)) * 64
ALLOW = frozenset({"127.0.0.1"})
# Long enough for a loaded CI machine, short enough that a hang fails the test quickly.
QUICK = FetchLimits(timeout_seconds=10.0)
STALL_GUARD_SECONDS = 15.0


# --- the classifier: no network at all -----------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> Any:
        raise AssertionError("the classifier must not touch the network")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse, raising=False)


NOT_PUBLIC = [
    "127.0.0.1",
    "127.255.255.254",
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # AWS/GCP/Azure metadata
    "169.254.0.23",
    "100.100.100.200",  # Alibaba/Volcengine-style metadata
    "100.64.0.1",
    "100.127.255.255",
    "168.63.129.16",  # Azure WireServer
    "192.0.0.192",  # Oracle Cloud metadata
    "0.0.0.0",
    "0.1.2.3",
    "255.255.255.255",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "198.18.0.1",
    "198.19.255.255",
    "192.0.2.1",
    "198.51.100.7",
    "203.0.113.9",
    "192.88.99.1",
    "::",
    "::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:100.100.100.200",
    "::ffff:0:a00:1",  # SIIT-translated 10.0.0.1
    "::127.0.0.1",  # IPv4-compatible
    "::10.0.0.1",
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1::1",
    "2002:0a00:0001::",  # 6to4 of 10.0.0.1
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1
    "2001:0:a00:1:8000:63bf:f7f7:f7f7",  # Teredo, server 10.0.0.1
    "2001:2::1",
    "2001:10::1",
    "2001:db8::1",
    "3fff::1",
    "100::1",
    "fc00::1",
    "fd00:ec2::254",  # AWS IPv6 metadata
    "fd12:3456::1",
    "fe80::1",
    "fe80::1%2",
    "fec0::1",
    "ff02::1",
    "ff0e::1",
    "4000::1",  # unassigned, outside 2000::/3
    "::2:3:4:5:6:7",
]

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "11.0.0.1",
    "100.63.255.255",  # just below the CGNAT block
    "100.128.0.0",  # just above it
    "172.32.0.1",
    "192.169.0.1",
    "223.255.255.254",
    "2001:4860:4860::8888",
    "2606:4700:4700::1111",
    "2400:cb00::1",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:0808:0808::1",  # 6to4 of 8.8.8.8
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo, server 65.54.227.120, client 8.8.8.8
]


@pytest.mark.parametrize("text", NOT_PUBLIC)
def test_not_public_addresses(text: str, no_network: None) -> None:
    assert is_public_address(ipaddress.ip_address(text)) is False


@pytest.mark.parametrize("text", PUBLIC)
def test_public_addresses(text: str, no_network: None) -> None:
    assert is_public_address(ipaddress.ip_address(text)) is True


@given(st.ip_addresses(v=4))
def test_every_ipv4_embedding_is_judged_like_its_ipv4(ip: ipaddress.IPv4Address) -> None:
    expected = is_public_address(ip)
    packed = int(ip)
    assert is_public_address(ipaddress.IPv6Address(f"::ffff:{ip}")) is expected
    assert is_public_address(ipaddress.IPv6Address((0x0064FF9B << 96) | packed)) is expected
    assert is_public_address(ipaddress.IPv6Address((0x2002 << 112) | (packed << 80) | 1)) is expected


@given(st.ip_addresses(v=4))
def test_a_public_ipv4_is_global_by_the_standard_library_too(ip: ipaddress.IPv4Address) -> None:
    # Our table may refuse more than the standard library does, never less.
    if is_public_address(ip):
        assert ip.is_global and not ip.is_multicast


@given(st.ip_addresses(v=6))
def test_a_public_ipv6_is_global_unicast(ip: ipaddress.IPv6Address) -> None:
    if is_public_address(ip) and ip.ipv4_mapped is None:
        assert ip in ipaddress.IPv6Network("2000::/3") or ip in ipaddress.IPv6Network("64:ff9b::/96")
        assert not ip.is_multicast and not ip.is_link_local and not ip.is_loopback


def test_any_non_public_answer_refuses_the_host(no_network: None) -> None:
    mixed = [ipaddress.ip_address("8.8.8.8"), ipaddress.ip_address("10.0.0.1")]
    with pytest.raises(InvalidParameter, match="refused destination") as info:
        vet_addresses("mixed.example", mixed)
    assert info.value.parameter == "Url"
    assert "10.0.0.1" not in info.value.message
    # It teaches the way out: the serve option, with this host, and its environment variable.
    assert "`vmsres serve --fetch-allow-host mixed.example`" in info.value.message
    assert "VMSRES_FETCH_ALLOW_HOST" in info.value.message
    vet_addresses("public.example", [ipaddress.ip_address("8.8.8.8"), ipaddress.ip_address("1.1.1.1")])
    # The operator's allow-list overrides, matched case-insensitively and however an IP is spelled.
    vet_addresses("Mixed.Example.", mixed, {"mixed.example"})
    vet_addresses("::1", [ipaddress.ip_address("::1")], {"[0:0:0:0:0:0:0:1]"})
    with pytest.raises(InvalidParameter):
        vet_addresses("other.example", mixed, {"mixed.example"})


# --- loopback servers ------------------------------------------------------------------------------


@dataclass
class Seen:
    path: str
    host: str
    client: str


@dataclass
class AudioServer:
    server: ThreadingHTTPServer
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [item.path for item in self.seen]


IDNA_LOCATIONS = [
    "http://xn--a/",
    "//xn--/",
    "http://xn--zz--.example/",
    "http://\u00e9\u00e9.xn--a.example/",
]


@pytest.mark.parametrize("location", IDNA_LOCATIONS, ids=range(len(IDNA_LOCATIONS)))
def test_a_redirect_to_a_host_idna_cannot_decode_is_a_wire_error(origin: AudioServer, location: str) -> None:
    # httpx parsed every Location itself and let idna's error escape: an InternalError.
    with pytest.raises((InvalidParameter, EmptyResourceBody)) as info:
        fetch(origin.url(f"/to?url={quote(location, safe='')}"))
    assert origin.paths() == ["/to"]
    if isinstance(info.value, InvalidParameter):
        assert info.value.parameter == "Url"


def test_a_redirect_to_a_punycode_host_is_followed(origin: AudioServer, fake_dns: FakeDns) -> None:
    # "xn--ls8h" is an emoji label, valid punycode that IDNA 2008 refuses to decode.
    host = "xn--ls8h.vmsres.test"
    fake_dns.answers[host] = [["127.0.0.1"]]
    target = f"http://{host}:{origin.port}/audio"
    assert fetch(origin.url(f"/to?url={quote(target, safe='')}"), allow=ALLOW | {host}) == AUDIO
    assert origin.paths() == ["/to", "/audio"]


def _handler(state: AudioServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if "Content-Length" not in (headers or {}):
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _stream_until_closed(self, limit: int) -> None:
            chunk = b"\xff" * 65536
            sent = 0
            try:
                while sent < limit:
                    self.wfile.write(chunk)
                    sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            state.seen.append(Seen(parts.path, self.headers.get("Host", ""), self.client_address[0]))
            path = parts.path
            query = parse_qs(parts.query)
            if path == "/audio":
                self._send(200, AUDIO, {"Content-Type": "audio/mpeg"})
            elif path == "/host":
                self._send(200, self.headers.get("Host", "").encode())
            elif path.startswith("/bytes/"):
                self._send(200, b"a" * int(path.rsplit("/", 1)[1]))
            elif path.startswith("/redirect/"):
                remaining = int(path.rsplit("/", 1)[1])
                target = f"/redirect/{remaining - 1}" if remaining > 1 else "/audio"
                self._send(302, headers={"Location": target})
            elif path == "/to":
                self._send(int(query.get("status", ["302"])[0]), headers={"Location": query["url"][0]})
            elif path == "/loop":
                self._send(307, headers={"Location": "/loop"})
            elif path == "/no-location":
                self._send(302)
            elif path == "/missing":
                self._send(404, b"not here")
            elif path == "/empty":
                self._send(200)
            elif path == "/declared-huge":
                self.send_response(200)
                self.send_header("Content-Length", str(100 * 1024 * 1024))
                self.end_headers()
                self._stream_until_closed(8 * 1024 * 1024)
            elif path == "/endless":
                # HTTP/1.0 without Content-Length: the body runs until the server closes.
                self.send_response(200)
                self.end_headers()
                self._stream_until_closed(256 * 1024 * 1024)
            elif path == "/stall-body":
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b"ID3")
                self.wfile.flush()
                state.release.wait(STALL_GUARD_SECONDS)
            elif path == "/stall-headers":
                state.release.wait(STALL_GUARD_SECONDS)
            else:
                self._send(404)

    return Handler


class _V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _serve(host: str, tls: ssl.SSLContext | None = None) -> Iterator[AudioServer]:
    state = AudioServer(server=None)  # type: ignore[arg-type]
    server_class = _V6Server if ":" in host else ThreadingHTTPServer
    # The constructor binds and listens, so connections queue up even before serve_forever runs.
    state.server = server_class((host, 0), _handler(state))
    if tls is not None:
        # accept() then does the TLS handshake; a client that rejects the certificate only makes that
        # accept() fail, which socketserver ignores.
        state.server.socket = tls.wrap_socket(state.server.socket, server_side=True)
    thread = threading.Thread(target=state.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        state.server.shutdown()
        state.server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def origin() -> Iterator[AudioServer]:
    yield from _serve("127.0.0.1")


@pytest.fixture
def server_v6() -> Iterator[AudioServer]:
    problem = None
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError as exc:
        problem = f"no IPv6 loopback on this machine: {exc}"
    skip_unless_ci(problem, "IPv6")
    yield from _serve("::1")


class Trap:
    """A listening socket nobody should connect to; it only records whether anyone did."""

    def __init__(self, host: str, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(8)
        self.sock.setblocking(False)
        self.host = host
        self.port = int(self.sock.getsockname()[1])

    def was_connected(self) -> bool:
        # The kernel completes a TCP handshake into the backlog without us accepting it, so once the
        # fetch has returned, any connection attempt is waiting here.
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            return False
        conn.close()
        return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def trap_factory() -> Iterator[Callable[..., Trap]]:
    traps: list[Trap] = []

    def make(host: str, port: int = 0) -> Trap:
        trap = Trap(host, port)
        traps.append(trap)
        return trap

    yield make
    for trap in traps:
        trap.close()


class FakeDns:
    """Answers for *.vmsres.test names; the n-th lookup of a name gets its n-th answer (the last repeats)."""

    def __init__(self) -> None:
        self.answers: dict[str, list[list[str]]] = {}
        self.lookups: dict[str, int] = {}

    def getaddrinfo(self, real: Callable[..., Any], host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if not name.endswith(".vmsres.test"):
            return real(host, port, *args, **kwargs)
        if name not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        count = self.lookups[name] = self.lookups.get(name, 0) + 1
        answer = self.answers[name][min(count, len(self.answers[name])) - 1]
        result: list[tuple[Any, ...]] = []
        for address in answer:
            if ":" in address:
                result.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, int(port), 0, 0)))
            else:
                result.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port))))
        return result


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    dns = FakeDns()
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", functools.partial(dns.getaddrinfo, real))
    return dns


def fetch(url: str, allow: frozenset[str] = ALLOW, limits: FetchLimits = QUICK, **kwargs: Any) -> bytes:
    return asyncio.run(fetch_audio(url, allow_hosts=allow, limits=limits, **kwargs))


# --- fetching ------------------------------------------------------------------------------------


def test_fetches_from_an_allow_listed_loopback_host(origin: AudioServer) -> None:
    assert fetch(origin.url("/audio")) == AUDIO
    assert origin.seen == [Seen("/audio", f"127.0.0.1:{origin.port}", "127.0.0.1")]


def test_host_header_is_the_urls_without_userinfo(origin: AudioServer) -> None:
    url = f"http://someone:secret@127.0.0.1:{origin.port}/host"
    assert fetch(url) == f"127.0.0.1:{origin.port}".encode()


def test_fetches_over_ipv6_loopback(server_v6: AudioServer) -> None:
    assert fetch(server_v6.url("/audio", host="::1"), allow=frozenset({"::1"})) == AUDIO
    assert server_v6.seen[0].host == f"[::1]:{server_v6.port}"


def test_allow_list_matches_names_case_insensitively(origin: AudioServer) -> None:
    # localhost may also resolve to ::1, where nothing listens: the next vetted address is tried.
    assert fetch(f"http://LocalHost:{origin.port}/audio", allow=frozenset({"LOCALHOST"})) == AUDIO


def test_follows_redirects_up_to_the_cap(origin: AudioServer) -> None:
    assert fetch(origin.url("/redirect/3")) == AUDIO
    assert origin.paths() == ["/redirect/3", "/redirect/2", "/redirect/1", "/audio"]


def test_one_redirect_too_many_is_refused(origin: AudioServer) -> None:
    with pytest.raises(InvalidParameter, match="too many redirects"):
        fetch(origin.url("/redirect/4"))
    # The fourth redirect is seen but not followed.
    assert origin.paths() == ["/redirect/4", "/redirect/3", "/redirect/2", "/redirect/1"]
    with pytest.raises(InvalidParameter, match="too many redirects"):
        fetch(origin.url("/redirect/1"), limits=FetchLimits(max_redirects=0, timeout_seconds=10))
    with pytest.raises(InvalidParameter, match="too many redirects"):
        fetch(origin.url("/loop"))


def test_redirect_to_a_loopback_address_not_allow_listed_is_refused(
    origin: AudioServer, trap_factory: Callable[..., Trap]
) -> None:
    trap = trap_factory("127.0.0.2")
    with pytest.raises(InvalidParameter, match="refused destination"):
        fetch(origin.url(f"/to?url=http://127.0.0.2:{trap.port}/audio"))
    assert not trap.was_connected()
    assert origin.paths() == ["/to"]


def test_redirects_are_rechecked_for_scheme(origin: AudioServer) -> None:
    for target in ("file:///etc/passwd", "ftp://127.0.0.1/audio.mp3", "gopher://127.0.0.1:70/"):
        with pytest.raises(InvalidParameter, match="only http and https"):
            fetch(origin.url(f"/to?url={target}"))


MALFORMED_LOCATIONS = [
    "https:foo",
    "mailto:x@y",
    "http://[::1",
    "http://[::1]x/",
    "http://exa mple.com/",
    "http://%zz/",
    "http://a:99999/",
    "http://a:0/",
    "http://" + "a" * 64 + ".example/",
    "data:audio/mpeg;base64,SUQz",
    "javascript:alert(1)",
]


@pytest.mark.parametrize("location", MALFORMED_LOCATIONS, ids=range(len(MALFORMED_LOCATIONS)))
def test_a_malformed_redirect_location_is_invalid_parameter_url(origin: AudioServer, location: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        fetch(origin.url(f"/to?url={quote(location, safe='')}"))
    assert info.value.parameter == "Url"
    assert "redirects to a URL that" in info.value.message
    assert origin.paths() == ["/to"]


def test_an_overlong_url_is_invalid_parameter_url(no_network: None) -> None:
    with pytest.raises(InvalidParameter, match="longer than 2048") as info:
        fetch("http://example.com/" + "a" * 2100)
    assert info.value.parameter == "Url"


def test_a_permanent_redirect_to_an_allowed_absolute_url_is_followed(origin: AudioServer) -> None:
    assert fetch(origin.url(f"/to?status=308&url={origin.url('/audio')}")) == AUDIO


def test_a_loopback_ip_not_allow_listed_is_refused_without_connecting(
    trap_factory: Callable[..., Trap],
) -> None:
    trap = trap_factory("127.0.0.3")
    for allow in (frozenset(), ALLOW):
        with pytest.raises(InvalidParameter, match="refused destination"):
            fetch(f"http://127.0.0.3:{trap.port}/audio", allow=allow)
    assert not trap.was_connected()


def test_localhost_not_allow_listed_is_refused(origin: AudioServer) -> None:
    with pytest.raises(InvalidParameter, match="refused destination"):
        fetch(f"http://localhost:{origin.port}/audio")
    # Other spellings of loopback are refused the same way, since the resolved address decides.
    for host in ("127.1", "2130706433", "0x7f.0.0.1", "[::ffff:127.0.0.1]"):
        with pytest.raises((InvalidParameter, EmptyResourceBody)):
            fetch(f"http://{host}:{origin.port}/audio", allow=frozenset())
    assert origin.seen == []


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://127.0.0.1/audio.mp3",
        "gopher://127.0.0.1:70/",
        "javascript:alert(1)",
        "data:audio/mpeg;base64,SUQz",
        "//127.0.0.1/audio",
        "http://",
        "http:///audio",
        "not a url",
        "",
    ],
)
def test_urls_that_are_not_http_are_refused(url: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        fetch(url)
    assert info.value.parameter == "Url"


def test_a_body_of_exactly_the_cap_is_fine(origin: AudioServer) -> None:
    limits = FetchLimits(max_bytes=4096, timeout_seconds=10)
    assert fetch(origin.url("/bytes/4096"), limits=limits) == b"a" * 4096
    with pytest.raises(ResourceSizeOverLimit):
        fetch(origin.url("/bytes/4097"), limits=limits)


def test_a_declared_oversize_body_is_refused(origin: AudioServer) -> None:
    with pytest.raises(ResourceSizeOverLimit):
        fetch(origin.url("/declared-huge"))


def test_an_endless_body_is_cut_off_at_the_cap(origin: AudioServer) -> None:
    started = time.monotonic()
    with pytest.raises(ResourceSizeOverLimit):
        fetch(origin.url("/endless"), limits=FetchLimits(max_bytes=1024 * 1024, timeout_seconds=10))
    assert time.monotonic() - started < 8


@pytest.mark.parametrize("path", ["/stall-body", "/stall-headers"])
def test_a_stalling_server_times_out(origin: AudioServer, path: str) -> None:
    started = time.monotonic()
    with pytest.raises(EmptyResourceBody, match="timed out"):
        fetch(origin.url(path), limits=FetchLimits(timeout_seconds=0.5))
    assert time.monotonic() - started < 3


def test_the_timeout_covers_the_whole_redirect_chain(origin: AudioServer) -> None:
    started = time.monotonic()
    with pytest.raises(EmptyResourceBody, match="timed out"):
        fetch(origin.url("/to?url=/stall-body"), limits=FetchLimits(timeout_seconds=0.5))
    assert time.monotonic() - started < 3


def test_a_404_is_an_empty_resource_body(origin: AudioServer) -> None:
    with pytest.raises(EmptyResourceBody, match="HTTP 404"):
        fetch(origin.url("/missing"))


def test_a_redirect_without_location_is_not_followed(origin: AudioServer) -> None:
    with pytest.raises(EmptyResourceBody, match="HTTP 302"):
        fetch(origin.url("/no-location"))


def test_an_empty_body_is_an_empty_resource_body(origin: AudioServer) -> None:
    with pytest.raises(EmptyResourceBody, match="empty body"):
        fetch(origin.url("/empty"))


def test_nothing_listening_is_an_empty_resource_body(trap_factory: Callable[..., Trap]) -> None:
    # Bound but not listening: the port refuses connections and no one else can take it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        with pytest.raises(EmptyResourceBody, match="could not connect"):
            fetch(f"http://127.0.0.1:{sock.getsockname()[1]}/audio")
    finally:
        sock.close()


def test_an_unresolvable_host_is_an_empty_resource_body(fake_dns: FakeDns) -> None:
    with pytest.raises(EmptyResourceBody, match="could not be resolved"):
        fetch("http://nowhere.vmsres.test/audio", allow=frozenset({"nowhere.vmsres.test"}))


def test_a_name_resolving_to_loopback_is_refused(origin: AudioServer, fake_dns: FakeDns) -> None:
    fake_dns.answers["sneaky.vmsres.test"] = [["127.0.0.1"]]
    with pytest.raises(InvalidParameter, match="refused destination"):
        fetch(f"http://sneaky.vmsres.test:{origin.port}/audio")
    assert origin.seen == []


def test_the_connection_goes_to_the_vetted_address_despite_rebinding(
    origin: AudioServer, trap_factory: Callable[..., Trap], fake_dns: FakeDns
) -> None:
    # The first answer is the one vetted; every later lookup would point elsewhere. Pinning means there
    # is no later lookup, so the trap on the rebinding address stays untouched.
    trap = trap_factory("127.0.0.2", origin.port)
    fake_dns.answers["rebind.vmsres.test"] = [["127.0.0.1"], ["127.0.0.2"]]
    body = fetch(f"http://rebind.vmsres.test:{origin.port}/host", allow=frozenset({"rebind.vmsres.test"}))
    assert body == f"rebind.vmsres.test:{origin.port}".encode()
    assert fake_dns.lookups == {"rebind.vmsres.test": 1}
    assert not trap.was_connected()


# --- https: SNI and certificate checks against the name while connecting to the pinned IP ---------


@dataclass
class TlsServer:
    audio: AudioServer
    client_context: ssl.SSLContext
    sni_seen: list[str | None]


def _make_certificates(directory: Path, name: str) -> tuple[Path, Path, Path]:
    from cryptography import x509  # a dependency of vmsres itself: no skip that could hide a failure
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vmsres test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        # Only the name, no IP: verifying against 127.0.0.1 instead of the name would fail.
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = directory / "ca.pem"
    cert_path = directory / "leaf.pem"
    key_path = directory / "leaf.key"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(leaf_cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_path, cert_path, key_path


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[TlsServer]:
    ca_path, cert_path, key_path = _make_certificates(tmp_path, "audio.vmsres.test")
    sni_seen: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)

    def remember_sni(sock: Any, server_name: str | None, ctx: Any) -> None:
        sni_seen.append(server_name)

    context.sni_callback = remember_sni
    client_context = ssl.create_default_context(cafile=str(ca_path))
    for audio in _serve("127.0.0.1", context):
        yield TlsServer(audio, client_context, sni_seen)


def test_https_verifies_the_name_while_connecting_to_the_pinned_ip(
    tls_server: TlsServer, fake_dns: FakeDns
) -> None:
    fake_dns.answers["audio.vmsres.test"] = [["127.0.0.1"]]
    url = f"https://audio.vmsres.test:{tls_server.audio.port}/host"
    body = fetch(url, allow=frozenset({"audio.vmsres.test"}), ssl_context=tls_server.client_context)
    assert body == f"audio.vmsres.test:{tls_server.audio.port}".encode()
    assert tls_server.sni_seen == ["audio.vmsres.test"]


def test_https_refuses_a_certificate_for_another_name(tls_server: TlsServer, fake_dns: FakeDns) -> None:
    fake_dns.answers["other.vmsres.test"] = [["127.0.0.1"]]
    url = f"https://other.vmsres.test:{tls_server.audio.port}/audio"
    with pytest.raises(EmptyResourceBody, match="could not connect"):
        fetch(url, allow=frozenset({"other.vmsres.test"}), ssl_context=tls_server.client_context)
    assert tls_server.audio.seen == []


def test_https_with_an_untrusted_certificate_fails(tls_server: TlsServer, fake_dns: FakeDns) -> None:
    fake_dns.answers["audio.vmsres.test"] = [["127.0.0.1"]]
    url = f"https://audio.vmsres.test:{tls_server.audio.port}/audio"
    with pytest.raises(EmptyResourceBody, match="could not connect"):
        fetch(url, allow=frozenset({"audio.vmsres.test"}))
    assert tls_server.audio.seen == []
