"""The /metrics HTTP endpoint (prometheus_client's WSGI server on a thread of its own)."""

from __future__ import annotations

import ipaddress
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server
from prometheus_client.registry import CollectorRegistry

from hapair.errors import UsageError

DEFAULT_LISTEN = "127.0.0.1:9187"


def parse_listen(text: str) -> tuple[str, int]:
    """`127.0.0.1:9187`, `[::1]:9187` or `0.0.0.0:9187` → (address, port). Port 0 lets the
    kernel pick a free one; the monitor logs which."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise UsageError(f"--listen {text!r}: expected ADDRESS:PORT, e.g. {DEFAULT_LISTEN}"
                         ) from None
    if not sep or not 0 <= number <= 65535:
        raise UsageError(f"--listen {text!r}: the port must be within 0-65535")
    return host, number


class MetricsServer:
    def __init__(self, registry: CollectorRegistry, address: str, port: int) -> None:
        try:
            self._server, self._thread = start_http_server(port, address, registry)
        except OSError as exc:
            raise UsageError(f"--listen {address}:{port}: cannot listen ({exc.strerror})"
                             ) from None
        self.address, self.port = address, self._server.server_port

    @property
    def server(self) -> WSGIServer:
        return self._server

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
