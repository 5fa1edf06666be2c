"""A tiny TCP proxy in front of the test S3 endpoint that misbehaves on purpose.

It forwards bytes both ways. For the first ``bad_connections`` connections it either holds
the endpoint's response back for ``delay_s`` seconds (a slow, stalled request) or answers
with ``503 SlowDown`` itself, as S3 does when it throttles. Later connections pass through
untouched, so a client that retries gets through. Nothing of the client is replaced: this
is a real socket between pyarrow's AWS SDK and the endpoint.
"""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlparse

SLOW_DOWN = (b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nConnection: close\r\n"
             b"Content-Length: %d\r\n\r\n%s")
SLOW_DOWN_BODY = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                  b"<Message>Please reduce your request rate.</Message></Error>")


class MisbehavingProxy:
    """``with MisbehavingProxy(endpoint, mode="slow"|"throttle", bad_connections=1) as proxy``;
    ``proxy.url`` is its endpoint URL, ``proxy.connections`` counts the connections it took and
    ``proxy.bytes_down`` the bytes the endpoint sent back (``mode="pass"``: no misbehaviour)."""

    def __init__(self, endpoint: str, mode: str, bad_connections: int = 1, delay_s: float = 3.0):
        parsed = urlparse(endpoint)
        self.upstream = (parsed.hostname, parsed.port)
        self.mode, self.bad_connections, self.delay_s = mode, bad_connections, delay_s
        self.connections = 0
        self.bytes_down = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._closed = threading.Event()

    def __enter__(self) -> MisbehavingProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._closed.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            bad = self.connections <= self.bad_connections
            threading.Thread(target=self._serve, args=(client, bad), daemon=True).start()

    def _serve(self, client: socket.socket, bad: bool) -> None:
        if bad and self.mode == "throttle":
            client.recv(65536)  # the request head
            client.sendall(SLOW_DOWN % (len(SLOW_DOWN_BODY), SLOW_DOWN_BODY))
            client.close()
            return
        upstream = socket.create_connection(self.upstream)
        delay = self.delay_s if bad and self.mode == "slow" else 0.0
        threading.Thread(target=_pipe, args=(client, upstream, 0.0), daemon=True).start()
        _pipe(upstream, client, delay, self)


def _pipe(source: socket.socket, target: socket.socket, delay_s: float,
          counter: MisbehavingProxy | None = None) -> None:
    try:
        while data := source.recv(65536):
            if delay_s:
                time.sleep(delay_s)
                delay_s = 0.0
            if counter is not None:
                counter.bytes_down += len(data)
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
