"""The operations of the load mix, as one virtual user performs them.

Each operation sends one request through the user's own httpx client (its own cookie jar),
checks the answer against the CMS contract and returns one RequestRecord, plus an Ack when
it was a write the server acknowledged (2xx with the expected body; a redirect is not one).
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import httpx

from hapair.drill import records as R
from hapair.drill.records import Ack, ArticleAck, MediaAck, RequestRecord, SessionAck
from hapair.drill.target import same_origin_url

DEFAULT_MIX: dict[str, int] = {
    R.ARTICLE_CREATE: 4,
    R.ARTICLE_READ: 4,
    R.ARTICLE_LIST: 2,
    R.MEDIA_UPLOAD: 1,
    R.MEDIA_READ: 1,
    R.SESSION_WRITE: 2,
    R.SESSION_READ: 2,
    R.FRONTEND: 2,
}
LIST_LIMIT = 10
RECENT = 200  # how many recent acknowledged items reads choose from
MAX_PENDING_SESSION = 1000


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Recent:
    """Recently acknowledged articles and media, shared by all users (reads pick here)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._articles: deque[ArticleAck] = deque(maxlen=RECENT)
        self._media: deque[MediaAck] = deque(maxlen=RECENT)

    def add(self, ack: Ack) -> None:
        with self._lock:
            if isinstance(ack, ArticleAck):
                self._articles.append(ack)
            elif isinstance(ack, MediaAck):
                self._media.append(ack)

    def article(self, rng: random.Random) -> ArticleAck | None:
        with self._lock:
            return rng.choice(self._articles) if self._articles else None

    def media(self, rng: random.Random) -> MediaAck | None:
        with self._lock:
            return rng.choice(self._media) if self._media else None


@dataclass(frozen=True)
class _Sent:
    start: float
    end: float
    response: httpx.Response | None
    error_class: str | None = None
    detail: str = ""


def pick_op(rng: random.Random, mix: dict[str, int]) -> str:
    ops = list(mix)
    return rng.choices(ops, weights=[mix[o] for o in ops])[0]


class VirtualUser:
    """One user: its own client and cookie jar, its own sequence numbers and session value."""

    def __init__(
        self,
        worker: int,
        client: httpx.Client,
        base_url: str,
        run_id: str,
        rng: random.Random,
        recent: Recent,
    ) -> None:
        self.worker = worker
        self.client = client
        self.base_url = base_url
        self.run_id = run_id
        self.rng = rng
        self.recent = recent
        self._seq = 0
        self._session: SessionAck | None = None
        self._session_pending: list[dict[str, Any]] = []  # written since, outcome unknown

    def run(self, op: str) -> tuple[RequestRecord, Ack | None]:
        """Perform `op`; a read with nothing to read yet falls back to the matching write."""
        if op == R.ARTICLE_READ or op == R.ARTICLE_LIST:
            article = self.recent.article(self.rng)
            if article is None:
                return self.article_create()
            if op == R.ARTICLE_READ:
                return self.article_read(article)
            return self.article_list(article)
        if op == R.MEDIA_READ:
            media = self.recent.media(self.rng)
            return self.media_read(media) if media else self.media_upload()
        if op == R.SESSION_READ:
            return self.session_read() if self._session else self.session_write()
        return {
            R.ARTICLE_CREATE: self.article_create,
            R.MEDIA_UPLOAD: self.media_upload,
            R.SESSION_WRITE: self.session_write,
            R.FRONTEND: self.frontend,
        }[op]()

    def session_state(self) -> SessionAck | None:
        """What the checker should find in this user's session at the end."""
        if self._session is None:
            return None
        return SessionAck(
            worker=self.worker,
            value=self._session.value,
            acked_at=self._session.acked_at,
            also_accept=tuple(self._session_pending),
            cookies=httpx.Cookies(self.client.cookies),
        )

    # -- operations -------------------------------------------------------------------------

    def article_create(self) -> tuple[RequestRecord, Ack | None]:
        seq = self._next_seq()
        title = f"drill {self.run_id} w{self.worker} #{seq}"
        body = f"{title}: {self.rng.randbytes(24).hex()}"
        sent = self._send("POST", "api/articles/", json={"title": title, "body": body})
        data, problem = _json_answer(sent, dict, write=True)
        if data is not None:
            problem = _article_create_problem(data, title, body)
        ref = str(data.get("id", "")) if data else ""
        rec = _record(R.ARTICLE_CREATE, self.worker, sent, problem, ref)
        if not rec.ok or data is None:
            return rec, None
        ack = ArticleAck(str(data["id"]), title, sha256(body.encode()), sent.end, self.worker)
        self.recent.add(ack)
        return rec, ack

    def article_read(self, article: ArticleAck) -> tuple[RequestRecord, Ack | None]:
        sent = self._send("GET", f"api/articles/{article.id}/")
        data, problem = _json_answer(sent, dict)
        if data is not None:
            problem = article_problem(data, article)
        return _record(R.ARTICLE_READ, self.worker, sent, problem, ref=article.id), None

    def article_list(self, after: ArticleAck) -> tuple[RequestRecord, Ack | None]:
        params = {"after": after.id, "limit": str(LIST_LIMIT)}
        sent = self._send("GET", "api/articles/", params=params)
        data, problem = _json_answer(sent, list)
        if data is not None:
            problem = list_problem(data, after.id, LIST_LIMIT)
        return _record(R.ARTICLE_LIST, self.worker, sent, problem, ref=after.id), None

    def media_upload(self) -> tuple[RequestRecord, Ack | None]:
        seq = self._next_seq()
        blob = self.rng.randbytes(self.rng.randint(512, 8192))
        name = f"drill-{self.run_id}-w{self.worker}-{seq}.bin"
        files = {"file": (name, blob, "application/octet-stream")}
        sent = self._send("POST", "api/media/", files=files)
        data, problem = _json_answer(sent, dict, write=True)
        digest = sha256(blob)
        if data is not None:
            problem = self._media_upload_problem(data, digest, len(blob))
        ref = str(data.get("key", "")) if data else ""
        rec = _record(R.MEDIA_UPLOAD, self.worker, sent, problem, ref)
        if not rec.ok or data is None:
            return rec, None
        ack = MediaAck(str(data["key"]), data["url"], digest, len(blob), sent.end, self.worker)
        self.recent.add(ack)
        return rec, ack

    def media_read(self, media: MediaAck) -> tuple[RequestRecord, Ack | None]:
        # Checked when the upload was acknowledged; never follow a URL off the front door.
        url = same_origin_url(self.base_url, media.url) or self.base_url
        sent = self._send("GET", url)
        problem = _status_problem(sent)
        resp = sent.response
        if problem is None and resp is not None and 200 <= resp.status_code < 300:
            problem = media_problem(resp.content, media)
        return _record(R.MEDIA_READ, self.worker, sent, problem, ref=media.key), None

    def session_write(self) -> tuple[RequestRecord, Ack | None]:
        seq = self._next_seq()
        value = {"run": self.run_id, "worker": self.worker, "seq": seq}
        sent = self._send("POST", "api/session/", json=value)
        problem = _status_problem(sent, write=True)
        resp = sent.response
        if resp is not None and 200 <= resp.status_code < 300 and not self.client.cookies:
            problem = "no session cookie set"
        rec = _record(R.SESSION_WRITE, self.worker, sent, problem, ref=str(seq))
        if not rec.ok:
            self._session_pending = [*self._session_pending, value][-MAX_PENDING_SESSION:]
            return rec, None
        self._session = SessionAck(self.worker, value, sent.end)
        self._session_pending = []
        return rec, self._session

    def session_read(self) -> tuple[RequestRecord, Ack | None]:
        assert self._session is not None
        sent = self._send("GET", "api/session/")
        data, problem = _json_answer(sent, dict)
        if data is not None:
            problem = self._session_problem(data)
        ref = str(self._session.value["seq"])
        return _record(R.SESSION_READ, self.worker, sent, problem, ref), None

    def frontend(self) -> tuple[RequestRecord, Ack | None]:
        sent = self._send("GET", "")
        problem = None
        resp = sent.response
        if resp is not None and resp.status_code == 200 and "html" not in _ctype(resp):
            problem = "front page is not HTML"
        return _record(R.FRONTEND, self.worker, sent, problem), None

    # -- helpers ----------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _send(self, method: str, url: str, **kwargs: Any) -> _Sent:
        start = time.monotonic()
        try:
            resp = self.client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:  # refused, reset, timeout, protocol error
            return _Sent(start, time.monotonic(), None, type(exc).__name__, str(exc)[:200])
        return _Sent(start, time.monotonic(), resp)

    def _media_upload_problem(self, data: dict[str, Any], digest: str, size: int) -> str | None:
        for key in ("key", "url", "size", "sha256"):
            if key not in data:
                return f"no {key!r} in the answer"
        if not isinstance(data["url"], str) or same_origin_url(self.base_url, data["url"]) is None:
            return f"media url {data['url']!r} leaves the front door"
        if data["sha256"] != digest:
            return "sha256 in the answer differs from the bytes sent"
        if data["size"] != size:
            return f"size {data['size']!r} differs from {size}"
        return None

    def _session_problem(self, data: dict[str, Any]) -> str | None:
        assert self._session is not None
        if data == self._session.value:
            return None
        for i, value in enumerate(self._session_pending):
            if data == value:  # an unconfirmed write did land: it is the value now
                self._session = SessionAck(self.worker, value, time.monotonic())
                self._session_pending = self._session_pending[i + 1 :]
                return None
        return f"session holds {_short(data)}, last acknowledged {_short(self._session.value)}"


# -- pure checks of answers (shared with the checker) ------------------------------------------


def article_problem(data: dict[str, Any], article: ArticleAck) -> str | None:
    if data.get("title") != article.title:
        return f"title {_short(data.get('title'))} differs"
    body = data.get("body")
    if not isinstance(body, str) or sha256(body.encode()) != article.body_sha256:
        return "body differs from the acknowledged one"
    return None


def media_problem(content: bytes, media: MediaAck) -> str | None:
    if sha256(content) != media.sha256:
        return f"content differs ({len(content)} bytes, expected {media.size})"
    return None


def list_problem(items: list[Any], after: str, limit: int) -> str | None:
    if len(items) > limit:
        return f"{len(items)} items for limit={limit}"
    ids = []
    for item in items:
        if not isinstance(item, dict) or "id" not in item:
            return "an item without an id"
        ids.append(item["id"])
    if all(isinstance(i, int) for i in ids) and after.isdigit():
        keys = [int(after), *ids]
        if any(a >= b for a, b in zip(keys, keys[1:], strict=False)):
            return f"ids not increasing after {after}: {ids}"
    return None


def _article_create_problem(data: dict[str, Any], title: str, body: str) -> str | None:
    ident = data.get("id")
    if ident is None or isinstance(ident, bool) or str(ident) == "":
        return "no id in the answer"
    if "title" in data and data["title"] != title:
        return "title in the answer differs"
    if "body" in data and data["body"] != body:
        return "body in the answer differs"
    return None


def _status_problem(sent: _Sent, write: bool = False) -> str | None:
    """A redirect where data was expected breaks the contract (e.g. a login page)."""
    resp = sent.response
    if resp is not None and 300 <= resp.status_code < 400:
        where = resp.headers.get("location", "?")
        return f"redirect to {where}" + (", not an acknowledgement" if write else "")
    return None


def _json_answer(sent: _Sent, kind: type, write: bool = False) -> tuple[Any, str | None]:
    """(parsed JSON of a 2xx answer, None) or (None, problem); (None, None) when non-2xx."""
    problem = _status_problem(sent, write)
    resp = sent.response
    if problem or resp is None or not 200 <= resp.status_code < 300:
        return None, problem
    try:
        data = resp.json()
    except ValueError:
        return None, "answer is not JSON"
    if not isinstance(data, kind):
        return None, f"answer is not a JSON {kind.__name__}"
    return data, None


def _record(op: str, worker: int, sent: _Sent, problem: str | None, ref: str = "") -> RequestRecord:
    resp = sent.response
    if resp is None:
        status, err, detail = None, sent.error_class, sent.detail
    elif problem is not None:
        status, err, detail = resp.status_code, R.MISMATCH, problem
    else:
        status, err = resp.status_code, None
        detail = "" if status < 400 else f"HTTP {status} {resp.reason_phrase}"
    return RequestRecord(op, worker, sent.start, sent.end, status, err, detail, ref)


def _ctype(resp: httpx.Response) -> str:
    return str(resp.headers.get("content-type", ""))


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
