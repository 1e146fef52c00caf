"""A small in-process CMS implementing the drill's HTTP contract, with faults on demand.

Test-only. Storage is in memory; the server listens on 127.0.0.1 in the drill's port range
(18600-18699) and speaks HTTP/1.0 (one connection per request), so `down()` really refuses
new requests instead of leaving keep-alive connections served.

Faults: fail_after(n, k) answers k requests with 503 after n requests; down()/up() closes
and reopens the port; lose_next_article() acknowledges one article without storing it;
drop_article / corrupt_media / drop_sessions damage what was stored.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PORTS = range(18600, 18700)


def op_of(method: str, path: str) -> str:
    """The drill op a request belongs to (same names as hapair.drill.records)."""
    if path.startswith("/api/articles/"):
        if method == "POST":
            return "article.create"
        return "article.list" if path == "/api/articles/" else "article.read"
    if path == "/api/media/":
        return "media.upload"
    if path.startswith("/media/"):
        return "media.read"
    if path == "/api/session/":
        return "session.write" if method == "POST" else "session.read"
    if path == "/":
        return "frontend"
    return "other"


class FakeCMS:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.articles: dict[int, dict[str, Any]] = {}
        self.next_id = 1
        self.media: dict[str, bytes] = {}
        self.sessions: dict[str, Any] = {}
        self.requests = 0  # every request that reached a handler
        self.injected: Counter[str] = Counter()  # op → failures injected
        self._fail_after: int | None = None
        self._fail_left = 0
        self._fail_status = 503
        self._lose_next_article = False
        self.lost_article_ids: list[int] = []
        self.port: int | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> FakeCMS:
        for port in PORTS if self.port is None else [self.port]:
            try:
                self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
            except OSError:
                continue
            self.port = port
            break
        else:
            raise RuntimeError("no free port in 18600-18699")
        server = self._server
        server.daemon_threads = True
        # A short poll interval makes down() quick.
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05), daemon=True
        )
        self._thread.start()
        return self

    def down(self) -> None:
        """Close the listening socket: new connections are refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def up(self) -> None:
        self.start()

    stop = down

    # -- faults ----------------------------------------------------------------------------

    def fail_after(self, served: int, count: int, status: int = 503) -> None:
        with self.lock:
            self._fail_after, self._fail_left, self._fail_status = served, count, status

    def lose_next_article(self) -> None:
        with self.lock:
            self._lose_next_article = True

    def drop_article(self, ident: int) -> None:
        with self.lock:
            del self.articles[ident]

    def corrupt_media(self, key: str) -> None:
        with self.lock:
            self.media[key] = b"not the bytes you uploaded"

    def drop_sessions(self) -> None:
        with self.lock:
            self.sessions.clear()

    def _inject(self, op: str) -> int | None:
        """The status to fail this request with, if a fault window covers it."""
        with self.lock:
            self.requests += 1
            armed = self._fail_after is not None and self.requests > self._fail_after
            if armed and self._fail_left > 0:
                self._fail_left -= 1
                self.injected[op] += 1
                return self._fail_status
            return None

    # -- contract --------------------------------------------------------------------------

    def create_article(self, data: Any) -> tuple[int, Any]:
        if not isinstance(data, dict) or not {"title", "body"} <= set(data):
            return 400, {"error": "title and body required"}
        with self.lock:
            ident = self.next_id
            self.next_id += 1
            article = {"id": ident, "title": data["title"], "body": data["body"]}
            if self._lose_next_article:
                self._lose_next_article = False
                self.lost_article_ids.append(ident)
            else:
                self.articles[ident] = article
        return 201, article

    def list_articles(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        after = int(query.get("after", ["0"])[0])
        limit = int(query.get("limit", ["20"])[0])
        with self.lock:
            ids = sorted(i for i in self.articles if i > after)[:limit]
            return 200, [self.articles[i] for i in ids]

    def get_article(self, ident: str) -> tuple[int, Any]:
        with self.lock:
            article = self.articles.get(int(ident)) if ident.isdigit() else None
        return (200, article) if article else (404, {"error": "not found"})

    def upload(self, ctype: str, body: bytes) -> tuple[int, Any]:
        msg = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body
        )
        for part in msg.iter_parts():
            if part.get_param("name", header="content-disposition") == "file":
                blob = part.get_payload(decode=True)
                key = uuid.uuid4().hex
                with self.lock:
                    self.media[key] = blob
                digest = hashlib.sha256(blob).hexdigest()
                return 201, {
                    "key": key,
                    "url": f"/media/{key}",
                    "size": len(blob),
                    "sha256": digest,
                }
        return 400, {"error": "no file"}


def _handler(cms: FakeCMS) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            status = cms._inject(op_of(method, parts.path))
            if status is not None:
                return self._send(status, b"unavailable", "text/plain")
            self._route(method, parts.path, parse_qs(parts.query), body)

        def _route(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> None:
            if method == "GET" and path == "/":
                return self._send(200, b"<html><body>fake cms</body></html>", "text/html")
            if method == "GET" and path == "/health/":
                return self._json(200, {"ok": True})
            if path == "/api/articles/":
                if method == "POST":
                    return self._json(*cms.create_article(_loads(body)))
                return self._json(*cms.list_articles(query))
            if method == "GET" and path.startswith("/api/articles/"):
                return self._json(*cms.get_article(path.split("/")[3]))
            if method == "POST" and path == "/api/media/":
                return self._json(*cms.upload(self.headers.get("content-type", ""), body))
            if method == "GET" and path.startswith("/media/"):
                with cms.lock:
                    blob = cms.media.get(path.split("/")[2])
                if blob is None:
                    return self._json(404, {"error": "not found"})
                return self._send(200, blob, "application/octet-stream")
            if path == "/api/session/":
                return self._session(method, body)
            return self._json(404, {"error": "no route"})

        def _session(self, method: str, body: bytes) -> None:
            cookie = SimpleCookie(self.headers.get("cookie", ""))
            sid = cookie["sessionid"].value if "sessionid" in cookie else None
            if method == "GET":
                with cms.lock:
                    value = cms.sessions.get(sid or "", {})
                return self._json(200, value)
            with cms.lock:
                if sid is None or sid not in cms.sessions:
                    sid = uuid.uuid4().hex
                cms.sessions[sid] = _loads(body)
            return self._json(200, {"ok": True}, {"Set-Cookie": f"sessionid={sid}; Path=/"})

        def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(data).encode(), "application/json", headers)

        def _send(
            self, status: int, payload: bytes, ctype: str, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def _loads(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError:
        return None


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Bounded wait; fails the test with `what` when the condition never comes."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)
