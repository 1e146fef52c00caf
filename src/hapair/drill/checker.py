"""After the load: is every acknowledged write still there, with the same content?

Articles are read by id (title and body digest compared), media by their URL (sha256 of the
bytes), sessions (optional) by each user's cookie (the last acknowledged value, or a later
write whose outcome was unknown). Items that do not check out are retried for `retry_for`
seconds after the first pass, to ride out a failover that is still settling.

Verdicts: LOST when the server answered and the write is missing (404/410) or different;
UNVERIFIED when no definitive answer came (timeouts, 5xx, other statuses, time budget out).
Both fail a drill; they are reported apart because they mean different things.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from hapair.drill.ops import article_problem, media_problem
from hapair.drill.records import (
    Ack,
    ArticleAck,
    MediaAck,
    SessionAck,
    ack_kind,
    ack_ref,
)
from hapair.drill.target import same_origin_url, validate_target

if TYPE_CHECKING:
    from hapair.drill.load import LoadResult

OK, LOST, UNVERIFIED = "ok", "lost", "unverified"


@dataclass(frozen=True)
class Verdict:
    state: str  # OK, LOST or UNVERIFIED
    reason: str = ""


@dataclass(frozen=True)
class MissingWrite:
    """An acknowledged write the checker could not find intact (lost) or could not check."""

    kind: str  # article, media, session
    ref: str  # article id, media key, worker-N
    what: str  # article title, media url, session value
    worker: int
    acked_at: float  # monotonic, as in the request records
    reason: str


@dataclass(frozen=True)
class CheckResult:
    checked: int
    verified: int
    lost: tuple[MissingWrite, ...]
    unverified: tuple[MissingWrite, ...]
    rounds: int
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.lost and not self.unverified


def check_writes(
    result: LoadResult,
    *,
    retry_for: float = 10.0,
    retry_interval: float = 0.5,
    check_sessions: bool = True,
    max_seconds: float = 300.0,
    transport: httpx.BaseTransport | None = None,
) -> CheckResult:
    """Check everything a finished load had acknowledged."""
    return check_acks(
        result.base_url,
        [a for a in result.acks if not isinstance(a, SessionAck)],
        result.sessions if check_sessions else (),
        allow_any_target=result.config.allow_any_target,
        timeout=result.config.timeout,
        retry_for=retry_for,
        retry_interval=retry_interval,
        max_seconds=max_seconds,
        transport=transport,
    )


def check_acks(
    url: str,
    acks: Iterable[Ack],
    sessions: Iterable[SessionAck] = (),
    *,
    allow_any_target: bool = False,
    timeout: float = 2.5,
    retry_for: float = 10.0,
    retry_interval: float = 0.5,
    max_seconds: float = 300.0,
    transport: httpx.BaseTransport | None = None,
) -> CheckResult:
    """Check acknowledged articles/media and session states against the server at `url`.

    Bounded: the first pass stops at `max_seconds`; retries stop `retry_for` s after it."""
    base = validate_target(url, allow_any_target)
    items: list[Ack] = [a for a in acks if not isinstance(a, SessionAck)]
    items += [s for s in sessions if s.cookies is not None]  # no cookie, nothing to ask with
    begin = time.monotonic()
    hard_end = begin + max_seconds
    with _client(base, timeout, transport) as client:
        verify = _verifier(client, base, timeout, transport)
        verdicts, _ = _pass(items, range(len(items)), verify, {}, hard_end)
        retry_end = min(time.monotonic() + retry_for, hard_end)
        rounds = 1
        while (todo := _not_ok(verdicts, len(items))) and time.monotonic() < retry_end:
            time.sleep(max(0.0, min(retry_interval, retry_end - time.monotonic())))
            verdicts, done = _pass(items, todo, verify, verdicts, retry_end)
            rounds += 1 if done else 0
    return _result(items, verdicts, rounds, time.monotonic() - begin)


def _pass(
    items: Sequence[Ack],
    todo: Iterable[int],
    verify: Callable[[Ack], Verdict],
    verdicts: dict[int, Verdict],
    deadline: float,
) -> tuple[dict[int, Verdict], int]:
    """Verify the `todo` items until `deadline`: (verdicts so far, how many were checked)."""
    out = dict(verdicts)
    done = 0
    for i in todo:
        if time.monotonic() >= deadline:
            break
        out[i] = verify(items[i])
        done += 1
    return out, done


def _not_ok(verdicts: dict[int, Verdict], n: int) -> list[int]:
    return [i for i in range(n) if verdicts.get(i, Verdict(UNVERIFIED)).state != OK]


def _result(
    items: Sequence[Ack], verdicts: dict[int, Verdict], rounds: int, seconds: float
) -> CheckResult:
    lost: list[MissingWrite] = []
    unverified: list[MissingWrite] = []
    for i, ack in enumerate(items):
        verdict = verdicts.get(i, Verdict(UNVERIFIED, "not checked: time budget exhausted"))
        if verdict.state == LOST:
            lost.append(_missing(ack, verdict.reason))
        elif verdict.state == UNVERIFIED:
            unverified.append(_missing(ack, verdict.reason))
    verified = len(items) - len(lost) - len(unverified)
    return CheckResult(len(items), verified, tuple(lost), tuple(unverified), rounds, seconds)


def _missing(ack: Ack, reason: str) -> MissingWrite:
    if isinstance(ack, ArticleAck):
        what = ack.title
    elif isinstance(ack, MediaAck):
        what = ack.url
    else:
        what = json.dumps(ack.value, sort_keys=True)
    return MissingWrite(ack_kind(ack), ack_ref(ack), what, ack.worker, ack.acked_at, reason)


# -- fetching and judging ------------------------------------------------------------------


def _client(
    base: str, timeout: float, transport: httpx.BaseTransport | None, cookies: Any = None
) -> httpx.Client:
    return httpx.Client(
        base_url=base,
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
        cookies=cookies,
        transport=transport,
    )


def _verifier(
    client: httpx.Client, base: str, timeout: float, transport: httpx.BaseTransport | None
) -> Callable[[Ack], Verdict]:
    def verify(ack: Ack) -> Verdict:
        if isinstance(ack, ArticleAck):
            resp, err = _get(client, f"api/articles/{ack.id}/")
            return judge_article(resp, err, ack)
        if isinstance(ack, MediaAck):
            url = same_origin_url(base, ack.url)
            if url is None:
                return Verdict(UNVERIFIED, f"media url {ack.url!r} leaves the front door")
            resp, err = _get(client, url)
            return judge_media(resp, err, ack)
        # Each user's own cookie jar, as the browser would send it.
        with _client(base, timeout, transport, cookies=ack.cookies) as user_client:
            resp, err = _get(user_client, "api/session/")
        return judge_session(resp, err, ack)

    return verify


def _get(client: httpx.Client, url: str) -> tuple[httpx.Response | None, str]:
    try:
        return client.get(url), ""
    except httpx.HTTPError as exc:
        return None, type(exc).__name__


def _undecided(resp: httpx.Response | None, err: str) -> Verdict | None:
    """The verdict for anything but a 200 answer; None when the answer is a 200."""
    if resp is None:
        return Verdict(UNVERIFIED, f"no answer ({err})")
    if resp.status_code in (404, 410):
        return Verdict(LOST, f"HTTP {resp.status_code}")
    if resp.status_code != 200:
        return Verdict(UNVERIFIED, f"HTTP {resp.status_code}")
    return None


def judge_article(resp: httpx.Response | None, err: str, ack: ArticleAck) -> Verdict:
    if (early := _undecided(resp, err)) is not None:
        return early
    assert resp is not None
    data = _json(resp)
    if not isinstance(data, dict):
        return Verdict(UNVERIFIED, "answer is not a JSON object")
    problem = article_problem(data, ack)
    return Verdict(LOST, problem) if problem else Verdict(OK)


def judge_media(resp: httpx.Response | None, err: str, ack: MediaAck) -> Verdict:
    if (early := _undecided(resp, err)) is not None:
        return early
    assert resp is not None
    problem = media_problem(resp.content, ack)
    return Verdict(LOST, problem) if problem else Verdict(OK)


def judge_session(resp: httpx.Response | None, err: str, ack: SessionAck) -> Verdict:
    if (early := _undecided(resp, err)) is not None:
        return early
    assert resp is not None
    data = _json(resp)
    if data == ack.value or data in ack.also_accept:
        return Verdict(OK)
    return Verdict(LOST, f"session holds {json.dumps(data, sort_keys=True)[:80]}")


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None
