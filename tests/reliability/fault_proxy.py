"""A fault-injecting HTTP proxy on 127.0.0.1 in front of the moto server (stdlib only).

Point a connection's `endpoint_url` at `FaultProxy.url` and add rules; every
request that matches no rule is passed to moto unchanged. A rule fails the
first `times` requests it matches (or all of them with `times=None`):

- `Answer(status, code)`: an S3 error document (500 InternalError, 503
  SlowDown, 403 AccessDenied, ...), as S3 itself would send it;
- `Reset()`: the connection is reset (RST) before any answer;
- `ResetMidBody(fraction)`: moto's answer is relayed, but the connection is
  reset after `fraction` of the body;
- `StallMidBody(fraction, seconds)`: the headers and `fraction` of the body
  arrive, then nothing for `seconds` (a read timeout on the client side).

The proxy records every request it saw (`seen`), with what it did to it,
so a test can prove retries happened.
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from io import BufferedReader
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Answer:
    status: int
    code: str
    message: str = "injected by the fault proxy"
    extra_xml: str = ""
    """More elements inside <Error> (S3 echoes e.g. <AWSAccessKeyId> for bad credentials)."""


@dataclass(frozen=True)
class Reset:
    pass


@dataclass(frozen=True)
class ResetMidBody:
    fraction: float = 0.5


@dataclass(frozen=True)
class StallMidBody:
    fraction: float = 0.5
    seconds: float = 30.0


Action = Answer | Reset | ResetMidBody | StallMidBody


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    """Lower-case names."""
    raw_headers: list[tuple[str, str]] = field(default_factory=list)
    """As sent, in order, to relay them unchanged."""

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""


@dataclass
class Rule:
    action: Action
    method: str | None = None
    path_contains: str | None = None
    query_contains: str | None = None
    times: int | None = None
    """How many matching requests fail; None: every one."""
    when: Callable[[Request], bool] | None = None
    hits: int = 0

    def matches(self, request: Request) -> bool:
        if self.method is not None and request.method != self.method:
            return False
        if self.path_contains is not None and self.path_contains not in request.path:
            return False
        if self.query_contains is not None and self.query_contains not in request.query:
            return False
        if self.when is not None and not self.when(request):
            return False
        return self.times is None or self.hits < self.times


@dataclass
class Seen:
    method: str
    target: str
    action: str
    at: float = field(default_factory=time.monotonic)


def is_get_object(request: Request) -> bool:
    """A GetObject (not a bucket listing): GET /bucket/key without a list query."""
    return (
        request.method == "GET"
        and request.path.count("/") >= 2
        and "list-type" not in request.query
        and not request.path.endswith("/")
    )


def error_document(answer: Answer) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{answer.code}</Code><Message>{answer.message}</Message>"
        f"{answer.extra_xml}<RequestId>FAULT0001</RequestId><HostId>fault-proxy</HostId></Error>"
    ).encode()


class FaultProxy:
    """`with FaultProxy(moto_endpoint) as proxy:`; `proxy.add(...)`; `proxy.url`."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.rules: list[Rule] = []
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()

    # -- configuration -------------------------------------------------------------
    def add(
        self,
        action: Action,
        *,
        method: str | None = None,
        path_contains: str | None = None,
        query_contains: str | None = None,
        times: int | None = None,
        when: Callable[[Request], bool] | None = None,
    ) -> Rule:
        rule = Rule(action, method, path_contains, query_contains, times, when)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def requests(self, action: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if action is None or s.action == action]

    # -- lifecycle -------------------------------------------------------------------
    def __enter__(self) -> Self:
        accept = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)
        accept.start()
        self._threads.append(accept)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        with suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            with self._lock:
                self._sockets.add(client)
                self._threads.append(thread)
            thread.start()

    # -- one client connection -------------------------------------------------------
    def _serve(self, client: socket.socket) -> None:
        upstream = http.client.HTTPConnection(*self._upstream, timeout=60)
        reader = client.makefile("rb")
        try:
            while not self._stopping.is_set():
                request = _read_head(reader)
                if request is None:
                    return
                rule = self._match(request)
                action = rule.action if rule else None
                self._record(request, action)
                if isinstance(action, Reset):
                    _reset(client)
                    return
                if isinstance(action, Answer):
                    # answer before the body: like S3, which may refuse without reading it
                    _send(client, *_error_response(request, action))
                    if request.headers.get("expect", "").lower() == "100-continue" or (
                        _body_length(request) > 0
                    ):
                        return  # the unread body makes the connection unusable: close it
                    continue
                if request.headers.get("expect", "").lower() == "100-continue":
                    client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                body = _read_body(reader, request)
                status, reason, headers, payload = _forward(upstream, request, body)
                if not self._relay(client, request, action, status, reason, headers, payload):
                    return
        except OSError:
            return
        finally:
            upstream.close()
            with suppress(OSError):
                reader.close()
                client.close()
            with self._lock:
                self._sockets.discard(client)

    def _match(self, request: Request) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(request):
                    rule.hits += 1
                    return rule
        return None

    def _record(self, request: Request, action: Action | None) -> None:
        name = "passed" if action is None else type(action).__name__
        if isinstance(action, Answer):
            name = f"{action.status} {action.code}"
        with self._lock:
            self.seen.append(Seen(request.method, request.target, name))

    def _relay(
        self,
        client: socket.socket,
        request: Request,
        action: Action | None,
        status: int,
        reason: str,
        headers: list[tuple[str, str]],
        payload: bytes,
    ) -> bool:
        """Send moto's answer (or part of it); False when the connection must end."""
        head = _head(status, reason, headers, len(payload), request.method == "HEAD")
        if isinstance(action, ResetMidBody | StallMidBody):
            cut = int(len(payload) * action.fraction)
            client.sendall(head + payload[:cut])
            if isinstance(action, StallMidBody):
                self._stopping.wait(action.seconds)
                client.close()
            else:
                _reset(client)
            return False
        client.sendall(head + (b"" if request.method == "HEAD" else payload))
        return True


def _read_head(reader: BufferedReader) -> Request | None:
    readline = reader.readline
    line = readline(65537)
    while line in (b"\r\n", b"\n"):
        line = readline(65537)
    if not line:
        return None
    method, target, _version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    headers: dict[str, str] = {}
    raw: list[tuple[str, str]] = []
    while True:
        header = readline(65537)
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.decode("latin-1").partition(":")
        raw.append((name.strip(), value.strip()))
        headers[name.strip().lower()] = value.strip()
    return Request(method, target, headers, raw)


def _body_length(request: Request) -> int:
    if "chunked" in request.headers.get("transfer-encoding", "").lower():
        return 1
    return int(request.headers.get("content-length", "0") or 0)


def _read_body(reader: BufferedReader, request: Request) -> bytes:
    """The body exactly as sent (chunked bodies stay chunked: they are relayed raw)."""
    read = reader.read
    readline = reader.readline
    if "chunked" not in request.headers.get("transfer-encoding", "").lower():
        length = int(request.headers.get("content-length", "0") or 0)
        return read(length) if length else b""
    parts: list[bytes] = []
    while True:
        size_line = readline(65537)
        parts.append(size_line)
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while True:  # trailers, then the blank line
                trailer = readline(65537)
                parts.append(trailer)
                if trailer in (b"\r\n", b"\n", b""):
                    return b"".join(parts)
        parts.append(read(size + 2))


def _forward(
    upstream: http.client.HTTPConnection, request: Request, body: bytes
) -> tuple[int, str, list[tuple[str, str]], bytes]:
    upstream.putrequest(request.method, request.target, skip_host=True, skip_accept_encoding=True)
    for name, value in request.raw_headers:
        if name.lower() not in ("expect", "connection"):
            upstream.putheader(name, value)
    upstream.endheaders(body or None)
    response = upstream.getresponse()
    payload = response.read()
    headers = [
        (name, value)
        for name, value in response.getheaders()
        if name.lower() not in ("transfer-encoding", "connection", "content-length")
        or (request.method == "HEAD" and name.lower() == "content-length")
    ]
    return response.status, response.reason, headers, payload


def _head(
    status: int, reason: str, headers: list[tuple[str, str]], length: int, head_request: bool
) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if not head_request:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _error_response(request: Request, answer: Answer) -> tuple[bytes]:
    body = error_document(answer)
    reason = http.client.responses.get(answer.status, "Error")
    headers = [("Content-Type", "application/xml"), ("x-amz-request-id", "FAULT0001")]
    head_request = request.method == "HEAD"
    head = _head(answer.status, reason, headers, len(body), head_request)
    if head_request:
        head = head.replace(b"\r\n\r\n", f"\r\nContent-Length: {len(body)}\r\n\r\n".encode(), 1)
        return (head,)
    return (head + body,)


def _send(client: socket.socket, data: bytes) -> None:
    client.sendall(data)


def _reset(client: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), as a crashed server or a middlebox does."""
    with suppress(OSError):
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()


__all__ = [
    "Answer",
    "FaultProxy",
    "Request",
    "Reset",
    "ResetMidBody",
    "Rule",
    "Seen",
    "StallMidBody",
    "is_get_object",
]
