"""The checker's verdicts and retries (hapair.drill.checker) over scripted answers."""

from __future__ import annotations

import json
from collections import Counter

import httpx
import pytest

from hapair.drill.checker import LOST, OK, UNVERIFIED, check_acks, judge_session
from hapair.drill.ops import sha256
from hapair.drill.records import ArticleAck, MediaAck, SessionAck
from hapair.errors import Refused

URL = "http://10.99.0.10/"
BODY = "the body"
ARTICLE = ArticleAck("7", "drill r w0 #1", sha256(BODY.encode()), 12.5, 0)
MEDIA = MediaAck("k1", "/media/k1", sha256(b"bytes"), 5, 13.0, 1)


def article_answer(**override: object) -> httpx.Response:
    return httpx.Response(200, json={"id": 7, "title": ARTICLE.title, "body": BODY, **override})


def check(handler, acks=(ARTICLE,), sessions=(), retry_for=0.0):  # type: ignore[no-untyped-def]
    return check_acks(
        URL,
        acks,
        sessions,
        retry_for=retry_for,
        retry_interval=0.01,
        transport=httpx.MockTransport(handler),
    )


def connect_error(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused", request=request)


@pytest.mark.parametrize(
    ("handler", "state", "reason"),
    [
        (lambda r: article_answer(), OK, ""),
        (lambda r: httpx.Response(404), LOST, "HTTP 404"),
        (lambda r: httpx.Response(410), LOST, "HTTP 410"),
        (lambda r: article_answer(body="other"), LOST, "body differs from the acknowledged one"),
        (lambda r: article_answer(title="other"), LOST, "title 'other' differs"),
        (lambda r: httpx.Response(503), UNVERIFIED, "HTTP 503"),
        (lambda r: httpx.Response(403), UNVERIFIED, "HTTP 403"),
        (lambda r: httpx.Response(200, text="x"), UNVERIFIED, "answer is not a JSON object"),
        (connect_error, UNVERIFIED, "no answer (ConnectError)"),
    ],
)
def test_article_verdicts(handler, state: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    result = check(handler)
    assert result.checked == 1
    missing = {LOST: result.lost, UNVERIFIED: result.unverified, OK: ()}[state]
    assert result.verified == (1 if state == OK else 0)
    assert [(m.kind, m.ref, m.what, m.acked_at, m.reason) for m in missing] == (
        [] if state == OK else [("article", "7", ARTICLE.title, 12.5, reason)]
    )


def test_media_checked_by_url_and_sha256() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url == "http://10.99.0.10/media/k1"
        return httpx.Response(200, content=b"BYTES")

    result = check(handler, acks=[MEDIA])
    assert [(m.kind, m.ref, m.what, m.reason) for m in result.lost] == [
        ("media", "k1", "/media/k1", "content differs (5 bytes, expected 5)")
    ]
    assert check(lambda r: httpx.Response(200, content=b"bytes"), acks=[MEDIA]).ok


def test_media_url_off_the_front_door_is_never_fetched() -> None:
    calls = Counter[str]()

    def handler(request: httpx.Request) -> httpx.Response:
        calls[str(request.url)] += 1
        return httpx.Response(200, content=b"bytes")

    away = MediaAck("k2", "http://192.0.2.7/media/k2", MEDIA.sha256, 5, 1.0, 0)
    result = check(handler, acks=[away])
    assert not calls
    assert [m.reason for m in result.unverified] == [
        "media url 'http://192.0.2.7/media/k2' leaves the front door"
    ]


def test_retries_ride_out_a_final_outage() -> None:
    answers = iter([httpx.Response(503), httpx.Response(404)])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers, None) or article_answer()

    result = check(handler, retry_for=5.0)
    assert result.ok and result.verified == 1
    assert result.rounds == 3


def test_without_retries_a_transient_404_is_lost() -> None:
    answers = iter([httpx.Response(404)])
    result = check(lambda r: next(answers, None) or article_answer(), retry_for=0.0)
    assert [m.ref for m in result.lost] == ["7"] and result.rounds == 1


def test_only_failing_items_are_retried() -> None:
    calls = Counter[str]()
    other = ArticleAck("8", "t8", sha256(b"b8"), 1.0, 0)

    def handler(request: httpx.Request) -> httpx.Response:
        calls[request.url.path] += 1
        if request.url.path == "/api/articles/8/":
            return httpx.Response(404)
        return article_answer()

    result = check(handler, acks=[ARTICLE, other], retry_for=0.2)
    assert [m.ref for m in result.lost] == ["8"]
    assert calls["/api/articles/7/"] == 1
    assert calls["/api/articles/8/"] == result.rounds > 1


def test_sessions_are_read_with_each_users_cookie() -> None:
    jar = httpx.Cookies()
    jar.set("sessionid", "s1", domain="10.99.0.10")
    session = SessionAck(2, {"seq": 4}, 9.0, ({"seq": 5},), cookies=jar)
    nocookie = SessionAck(3, {"seq": 1}, 9.0)  # from a record file: nothing to ask with

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers.get("cookie") == "sessionid=s1"
        return httpx.Response(200, json={"seq": 3})

    result = check(handler, acks=[], sessions=[session, nocookie])
    assert result.checked == 1
    assert [(m.kind, m.ref, m.what, m.reason) for m in result.lost] == [
        ("session", "worker-2", json.dumps({"seq": 4}), 'session holds {"seq": 3}')
    ]


@pytest.mark.parametrize(
    ("answer", "state"),
    [({"seq": 4}, OK), ({"seq": 5}, OK), ({"seq": 3}, LOST), ({}, LOST)],
)
def test_judge_session_accepts_later_unconfirmed_values(answer: object, state: str) -> None:
    ack = SessionAck(2, {"seq": 4}, 9.0, ({"seq": 5},))
    assert judge_session(httpx.Response(200, json=answer), "", ack).state == state


def test_checker_refuses_a_target_outside_the_lab() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request may be sent")

    with pytest.raises(Refused):
        check_acks("http://192.0.2.1/", [ARTICLE], transport=httpx.MockTransport(handler))


def test_time_budget_leaves_the_rest_unverified() -> None:
    acks = [ArticleAck(str(i), "t", "d", 1.0, 0) for i in range(5)]
    result = check_acks(
        URL, acks, max_seconds=0.0, retry_for=1.0, transport=httpx.MockTransport(connect_error)
    )
    assert result.verified == 0 and not result.lost
    assert {m.reason for m in result.unverified} == {"not checked: time budget exhausted"}
