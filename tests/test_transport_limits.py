"""Transport limits against a real server on loopback: head size and count, request target,
slow heads, oversized bodies sent whole (urllib, requests, raw sockets), query and token spelling."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest
import requests

from tests.conftest import official_vms_service
from tests.servers import RunningServer, start_server
from tests.wire_client import error_code, signed_request
from vmsres.protocol import API_VERSION
from vmsres.server.wire.app import body_parameters

TEN_MB = 10 * 1024 * 1024
QUERY = f"/?Action=QueryOpenGetResource&Version={API_VERSION}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("transport"),
        ["--header-timeout", "1", "--body-timeout", "1", "--fetch-allow-host", "127.0.0.1"],
    )
    yield running
    running.stop()


class _Redirector(BaseHTTPRequestHandler):
    """Answers every GET with a redirect to the Location named (percent-encoded) by its path."""

    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", unquote(self.path[1:]))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def redirector() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _address(server: RunningServer) -> tuple[str, int]:
    host, port = server.host_port.rsplit(":", 1)
    return host, int(port)


def _read_answer(sock: socket.socket, start: bytes = b"") -> tuple[int, dict[str, object]]:
    """The status and JSON body of the one answer on ``sock``, read up to its Content-Length."""
    sock.settimeout(10)
    data = start
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def _length(data: bytes) -> int:
    for line in data.partition(b"\r\n\r\n")[0].lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def _code(body: dict[str, object]) -> str:
    metadata = body["ResponseMetadata"]
    assert isinstance(metadata, dict)
    return str(metadata["Error"]["Code"])


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_64_mb_header_is_answered_431_without_being_read(server: RunningServer) -> None:
    # A first oversized head warms the code path up (imports, buffers) before memory is measured.
    with socket.create_connection(_address(server)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 32768)
        assert _read_answer(sock)[0] == 431
    before = _rss_kib(server.process.pid)
    sock = socket.create_connection(_address(server))
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
    sent, answer = 0, b""
    piece = b"a" * 65536
    # Send the header as a client would until the server answers; at most 64 MB, at most 20 s.
    deadline = time.monotonic() + 20
    while sent < 64 * 1024 * 1024 and time.monotonic() < deadline and not answer:
        readable, writable, _ = select.select([sock], [sock], [], 1)
        if readable:
            answer = sock.recv(65536)
        elif writable:
            try:
                sent += sock.send(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
    sock.setblocking(True)
    status, body = _read_answer(sock, answer)
    assert (status, _code(body)) == (431, "RequestHeaderFieldsTooLarge")
    assert sent < 64 * 1024 * 1024
    # The head cap is 16 KiB: the server's memory must not follow the header's size.
    assert _rss_kib(server.process.pid) - before < 4096


def test_a_head_over_the_cap_sent_in_one_piece_is_431(server: RunningServer) -> None:
    # The whole head (20 KiB, over the 16 KiB cap) and its end arrive together: the parser
    # completes it in one read, so the cap is checked on the finished head too.
    with socket.create_connection(_address(server)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
        status, body = _read_answer(sock)
    assert (status, _code(body)) == (431, "RequestHeaderFieldsTooLarge")


def test_pipelined_requests_are_answered_in_order_in_whole(server: RunningServer) -> None:
    # Both heads in one send: each answer leaves whole, in order, before the connection closes.
    with socket.create_connection(_address(server)) as sock:
        sock.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        sock.settimeout(10)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    first, _, rest = data.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200 ")
    assert rest.startswith(b'{"status":"ok"}HTTP/1.1 404 ')
    assert rest.endswith(b"}}}")


def test_too_many_header_fields_is_431(server: RunningServer) -> None:
    fields = b"".join(b"X-F%d: 1\r\n" % i for i in range(101))
    with socket.create_connection(_address(server)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
        status, body = _read_answer(sock)
    assert (status, _code(body)) == (431, "RequestHeaderFieldsTooLarge")


def test_a_long_request_target_is_414(server: RunningServer) -> None:
    response = requests.get(f"{server.url}{QUERY}&Keyword={'a' * 9000}", timeout=10)
    assert response.status_code == 414
    assert response.json()["ResponseMetadata"]["Error"]["Code"] == "RequestURITooLong"


def test_a_head_that_does_not_arrive_in_time_is_408(server: RunningServer) -> None:
    # The server runs with --header-timeout 1; the read waits for its answer, not a fixed time.
    with socket.create_connection(_address(server)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        status, body = _read_answer(sock)
    assert (status, _code(body)) == (408, "RequestTimeout")


@pytest.mark.parametrize("path", [QUERY, "/upload/x"])
def test_a_body_that_stalls_is_408(server: RunningServer, path: str) -> None:
    # The server runs with --body-timeout 1; an upload token is checked first, so a stalled
    # upload needs a real URL.
    if path.startswith("/upload/"):
        vms = official_vms_service(server)
        path = urlsplit(vms.get_resource_upload_url({"FileName": "stall.wav"})["Result"]["UploadUrl"]).path
    with socket.create_connection(_address(server)) as sock:
        method = "PUT" if path.startswith("/upload/") else "POST"
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
        sock.sendall(head.encode() + b"0123456789")
        status, body = _read_answer(sock)
    assert (status, _code(body)) == (408, "RequestTimeout")


def test_an_idle_connection_is_closed(server: RunningServer) -> None:
    with socket.create_connection(_address(server)) as sock:
        sock.settimeout(10)
        assert sock.recv(100) == b""


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_10_mb_body_from_urllib_reads_413(server: RunningServer, method: str) -> None:
    # urllib sends the whole body (no Expect: 100-continue) and only then reads the answer.
    request = urllib.request.Request(f"{server.url}{QUERY}", data=b"x" * TEN_MB, method=method)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 413
    assert json.loads(caught.value.read())["ResponseMetadata"]["Error"]["Code"] == "RequestEntityTooLarge"


def test_a_10_mb_body_from_requests_reads_413(server: RunningServer) -> None:
    response = requests.post(f"{server.url}{QUERY}", data=b"x" * TEN_MB, timeout=30)
    assert response.status_code == 413
    assert response.json()["ResponseMetadata"]["Error"]["Code"] == "RequestEntityTooLarge"


def test_a_10_mb_body_from_a_raw_socket_reads_413(server: RunningServer) -> None:
    head = f"POST {QUERY} HTTP/1.1\r\nHost: x\r\nContent-Length: {TEN_MB}\r\n\r\n".encode()
    with socket.create_connection(_address(server)) as sock:
        sock.sendall(head + b"x" * TEN_MB)
        status, body = _read_answer(sock)
    assert (status, _code(body)) == (413, "RequestEntityTooLarge")


def test_a_10_mb_upload_from_urllib_reads_its_error(server: RunningServer) -> None:
    vms = official_vms_service(server)
    url = vms.get_resource_upload_url({"FileName": "big.wav"})["Result"]["UploadUrl"]
    request = urllib.request.Request(url, data=b"x" * TEN_MB, method="PUT")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 400
    code = json.loads(caught.value.read())["ResponseMetadata"]["Error"]["Code"]
    assert code == "RESOURCE_SIZE_OVER_LIMIT"


def test_the_connection_still_serves_after_a_413_on_keep_alive(server: RunningServer) -> None:
    with requests.Session() as session:
        first = session.post(f"{server.url}{QUERY}", data=b"x" * (2 * 1024 * 1024), timeout=30)
        assert first.status_code == 413
        assert session.get(f"{server.url}/healthz", timeout=10).status_code == 200


@pytest.mark.parametrize("declared", [0, 5, 1000])
def test_content_length_beside_chunked_is_framed_by_the_chunks(server: RunningServer, declared: int) -> None:
    # The chunks frame the body (h11, RFC 9112); a Content-Length unlike them made the request
    # look cut short and the server answered nothing (uvicorn's 500).
    chunked = b"5\r\nhello\r\n0\r\n\r\n"
    head = f"POST {QUERY} HTTP/1.1\r\nHost: x\r\nContent-Length: {declared}\r\n"
    with socket.create_connection(_address(server)) as sock:
        sock.sendall(head.encode() + b"Transfer-Encoding: chunked\r\n\r\n" + chunked)
        status, body = _read_answer(sock)
    assert (status, _code(body)) == (401, "MissingAuthenticationToken")


def test_an_upload_with_content_length_beside_chunked_is_stored_whole(server: RunningServer) -> None:
    vms = official_vms_service(server)
    url = vms.get_resource_upload_url({"FileName": "framed.wav"})["Result"]["UploadUrl"]
    head = f"PUT {urlsplit(url).path} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
    with socket.create_connection(_address(server)) as sock:
        sock.sendall(head.encode() + b"Transfer-Encoding: chunked\r\n\r\n" + b"5\r\nhello\r\n0\r\n\r\n")
        status, body = _read_answer(sock)
    assert status == 200
    assert body["Result"] == {"Size": 5}


def test_query_escapes_that_are_not_utf8_name_the_parameter(server: RunningServer) -> None:
    response = requests.get(f"{server.url}{QUERY}&Keyword=%FF%FE", timeout=10)
    assert response.status_code == 400
    error = response.json()["ResponseMetadata"]["Error"]
    assert error["Code"] == "InvalidParameter"
    assert "Keyword" in error["Message"]


def test_repeated_keys_first_wins_in_query_and_form_body() -> None:
    form = body_parameters(b"Keyword=one&Keyword=two&Limit=5", "application/x-www-form-urlencoded")
    assert form == {"Keyword": "one", "Limit": "5"}


def test_repeated_keys_first_wins_in_a_json_body_too(server: RunningServer) -> None:
    # orjson kept the last value: a JSON body read `{"Name":"a","Name":"b"}` as "b", the query
    # and form bodies as "a".
    body = b'{"Name":"first","Name":"second","TtsTemplateContent":"hi","TtsTemplateContent":"x#"}'
    assert body_parameters(b'{"Type":1,"Type":0,"TtsOption":{"a":1,"a":2}}', "application/json") == {
        "Type": 1,
        "TtsOption": {"a": 1},
    }
    created = signed_request(server, "OpenCreateTts", body)
    assert created.status_code == 200, created.text
    assert created.json()["Result"]["Name"] == "first"
    for content_type in ("application/x-www-form-urlencoded", "application/json"):
        form = signed_request(
            server,
            "OpenCreateTts",
            b"Name=one&Name=two&TtsTemplateContent=hi",
            content_type=content_type,
        )
        if content_type.endswith("json"):
            assert error_code(form) == "InvalidParameter"
        else:
            assert form.json()["Result"]["Name"] == "one"


def test_form_escapes_that_are_not_utf8_name_the_parameter() -> None:
    from vmsres.protocol.errors import InvalidParameter

    with pytest.raises(InvalidParameter) as caught:
        body_parameters(b"Name=%C3%28", "application/x-www-form-urlencoded")
    assert caught.value.parameter == "Name"


@pytest.mark.parametrize("suffix", ["=", "==", "%3D%3D"])
def test_an_upload_token_has_one_spelling(server: RunningServer, suffix: str) -> None:
    vms = official_vms_service(server)
    url = vms.get_resource_upload_url({"FileName": f"spelling{len(suffix)}.wav"})["Result"]["UploadUrl"]
    response = requests.put(url + suffix, data=b"RIFF", timeout=10)
    assert response.status_code == 403
    assert response.json()["ResponseMetadata"]["Error"]["Code"] == "AccessDenied"
    # The canonical spelling still works (the refused attempt did not use the URL up).
    assert requests.put(url, data=b"RIFF", timeout=10).status_code == 200


@pytest.mark.parametrize(
    "location", ["https:foo", "mailto:x@y", "http://[::1", "http://a:99999/", "ftp://x/"]
)
def test_fetch_resource_answers_a_malformed_redirect_with_invalid_parameter(
    server: RunningServer, redirector: str, location: str
) -> None:
    url = f"{redirector}/{quote(location, safe='')}"
    response = signed_request(server, "FetchResource", {"Url": url, "Name": f"r-{len(location)}"})
    assert (response.status_code, error_code(response)) == (400, "InvalidParameter")
    assert "Url" in response.json()["ResponseMetadata"]["Error"]["Message"]


@pytest.mark.parametrize(
    "head",
    [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n",
        b"POST /?Action=QueryOpenGetResource HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        b"POST /?Action=QueryOpenGetResource HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    ],
)
def test_a_head_the_parser_refuses_gets_the_error_envelope(server: RunningServer, head: bytes) -> None:
    with socket.create_connection(_address(server)) as sock:
        sock.sendall(head)
        status, body = _read_answer(sock)
    assert (status, _code(body)) == (400, "InvalidParameter")
    assert "Request" in body["ResponseMetadata"]["Error"]["Message"]  # type: ignore[index]


def test_a_body_trickled_inside_every_pause_still_ends_in_408(server: RunningServer) -> None:
    # --body-timeout 1: each pause below stays under it, but the whole body gets 10 s at most.
    started = time.monotonic()
    with socket.create_connection(_address(server)) as sock:
        sock.sendall(f"POST {QUERY} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n".encode())
        sock.settimeout(0.4)
        answer = b""
        # Bounded: one byte about every 0.4 s for at most 30 s, far fewer than the 1000 announced.
        while not answer and time.monotonic() - started < 30:
            try:
                sock.sendall(b"{")
                answer = sock.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        # The answer came while the client was still trickling: the whole-body limit, not a pause.
        assert answer, "the server let a trickling body go on for 30 s"
        sock.settimeout(30)
        status, body = _read_answer(sock, answer)
    assert (status, _code(body)) == (408, "RequestTimeout")
    assert time.monotonic() - started >= 9
