"""What a drill records: one RequestRecord per request, one Ack per acknowledged write.

Times are `time.monotonic()` seconds of the process that ran the load, so a caller in the
same process can compare them with its own fault instants. Pure data + pure helpers only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# Operations of the mix. Writes are the ones that can be acknowledged.
ARTICLE_CREATE = "article.create"
ARTICLE_READ = "article.read"
ARTICLE_LIST = "article.list"
MEDIA_UPLOAD = "media.upload"
MEDIA_READ = "media.read"
SESSION_WRITE = "session.write"
SESSION_READ = "session.read"
FRONTEND = "frontend"

OPS = (
    ARTICLE_CREATE,
    ARTICLE_READ,
    ARTICLE_LIST,
    MEDIA_UPLOAD,
    MEDIA_READ,
    SESSION_WRITE,
    SESSION_READ,
    FRONTEND,
)
WRITE_OPS = frozenset({ARTICLE_CREATE, MEDIA_UPLOAD, SESSION_WRITE})

# error_class of a 2xx/3xx answer whose body broke the contract (wrong content, no id, …).
MISMATCH = "Mismatch"


class Outcome(StrEnum):
    OK = "ok"  # 2xx/3xx with the expected body
    HTTP_4XX = "http_4xx"  # a client or contract bug (or a read that found nothing)
    HTTP_5XX = "http_5xx"
    TRANSPORT = "transport"  # no HTTP answer: refused, reset, timeout
    MISMATCH = "mismatch"  # 2xx/3xx with a wrong body
    OTHER = "other"  # 1xx, or an internal error of the generator itself


FAILURES = tuple(o for o in Outcome if o is not Outcome.OK)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request. `status` is None when no HTTP answer came back (then `error_class` is the
    exception's class name); `error_class` is MISMATCH when the answer broke the contract."""

    op: str
    worker: int
    start: float
    end: float
    status: int | None = None
    error_class: str | None = None
    detail: str = ""
    ref: str = ""  # what the request was about: article id, media key, session seq

    @property
    def latency(self) -> float:
        return self.end - self.start

    @property
    def outcome(self) -> Outcome:
        return classify(self.status, self.error_class)

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def is_write(self) -> bool:
        return self.op in WRITE_OPS


def classify(status: int | None, error_class: str | None) -> Outcome:
    """2xx/3xx without error → OK; failures are sorted by what they tell about the cause."""
    if status is None:
        if error_class and error_class.startswith("Internal"):
            return Outcome.OTHER
        return Outcome.TRANSPORT
    if 200 <= status < 400:
        return Outcome.MISMATCH if error_class else Outcome.OK
    if 400 <= status < 500:
        return Outcome.HTTP_4XX
    if status >= 500:
        return Outcome.HTTP_5XX
    return Outcome.OTHER


@dataclass(frozen=True, slots=True)
class ArticleAck:
    id: str
    title: str
    body_sha256: str
    acked_at: float  # monotonic end of the acknowledged request
    worker: int


@dataclass(frozen=True, slots=True)
class MediaAck:
    key: str
    url: str
    sha256: str
    size: int
    acked_at: float
    worker: int


@dataclass(frozen=True, slots=True)
class SessionAck:
    """The last session value a virtual user had acknowledged, with what may follow it.

    `also_accept` holds values written afterwards whose outcome is unknown (timeout, 5xx):
    the server may hold one of them instead, which is not a loss. `cookies` is the user's
    cookie jar, kept in memory only (never serialised: it is a session credential)."""

    worker: int
    value: dict[str, Any]
    acked_at: float
    also_accept: tuple[dict[str, Any], ...] = ()
    cookies: Any = field(default=None, compare=False, repr=False)


Ack = ArticleAck | MediaAck | SessionAck


def ack_kind(ack: Ack) -> str:
    if isinstance(ack, ArticleAck):
        return "article"
    if isinstance(ack, MediaAck):
        return "media"
    return "session"


def ack_ref(ack: Ack) -> str:
    if isinstance(ack, ArticleAck):
        return ack.id
    if isinstance(ack, MediaAck):
        return ack.key
    return f"worker-{ack.worker}"


def record_to_dict(rec: RequestRecord) -> dict[str, Any]:
    return {
        "op": rec.op,
        "worker": rec.worker,
        "start": rec.start,
        "end": rec.end,
        "latency": round(rec.latency, 6),
        "status": rec.status,
        "error_class": rec.error_class,
        "detail": rec.detail,
        "ref": rec.ref,
        "outcome": rec.outcome.value,
    }


def record_from_dict(d: dict[str, Any]) -> RequestRecord:
    return RequestRecord(
        op=d["op"],
        worker=int(d["worker"]),
        start=float(d["start"]),
        end=float(d["end"]),
        status=d.get("status"),
        error_class=d.get("error_class"),
        detail=d.get("detail", ""),
        ref=d.get("ref", ""),
    )


def ack_to_dict(ack: Ack) -> dict[str, Any]:
    d: dict[str, Any] = {"kind": ack_kind(ack), "worker": ack.worker, "acked_at": ack.acked_at}
    if isinstance(ack, ArticleAck):
        d.update(id=ack.id, title=ack.title, body_sha256=ack.body_sha256)
    elif isinstance(ack, MediaAck):
        d.update(key=ack.key, url=ack.url, sha256=ack.sha256, size=ack.size)
    else:
        d.update(value=ack.value, also_accept=list(ack.also_accept))
    return d


def ack_from_dict(d: dict[str, Any]) -> Ack:
    kind, worker, at = d["kind"], int(d["worker"]), float(d["acked_at"])
    if kind == "article":
        return ArticleAck(str(d["id"]), d["title"], d["body_sha256"], at, worker)
    if kind == "media":
        return MediaAck(d["key"], d["url"], d["sha256"], int(d["size"]), at, worker)
    if kind == "session":
        return SessionAck(worker, d["value"], at, tuple(d.get("also_accept", ())))
    raise ValueError(f"unknown ack kind {kind!r}")
