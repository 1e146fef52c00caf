"""Contract checks of each operation (hapair.drill.ops) against scripted answers."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import httpx
import pytest

from hapair.drill.ops import Recent, VirtualUser, sha256
from hapair.drill.records import ArticleAck, MediaAck, Outcome, SessionAck

BASE = "http://10.99.0.10/"
Handler = Callable[[httpx.Request], httpx.Response]


def make_user(handler: Handler, recent: Recent | None = None) -> VirtualUser:
    client = httpx.Client(base_url=BASE, transport=httpx.MockTransport(handler))
    return VirtualUser(3, client, BASE, "run1", random.Random(1), recent or Recent())


def echo_article(request: httpx.Request) -> httpx.Response:
    sent = json.loads(request.content)
    return httpx.Response(201, json={"id": 7, **sent})


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused", request=request)


@pytest.mark.parametrize(
    ("handler", "outcome", "acked", "detail"),
    [
        (echo_article, Outcome.OK, True, ""),
        (lambda r: httpx.Response(201, json={"id": 7}), Outcome.OK, True, ""),
        (lambda r: httpx.Response(201, json={"title": "x"}), Outcome.MISMATCH, False, "no id"),
        (lambda r: httpx.Response(201, json=[1]), Outcome.MISMATCH, False, "not a JSON dict"),
        (lambda r: httpx.Response(201, text="<html>"), Outcome.MISMATCH, False, "not JSON"),
        (
            lambda r: httpx.Response(201, json={"id": 7, "title": "other"}),
            Outcome.MISMATCH,
            False,
            "title",
        ),
        (
            lambda r: httpx.Response(302, headers={"location": "/login/"}),
            Outcome.MISMATCH,
            False,
            "not an acknowledgement",
        ),
        (lambda r: httpx.Response(503), Outcome.HTTP_5XX, False, "HTTP 503"),
        (lambda r: httpx.Response(400), Outcome.HTTP_4XX, False, "HTTP 400"),
        (refuse, Outcome.TRANSPORT, False, "refused"),
    ],
)
def test_article_create(handler: Handler, outcome: Outcome, acked: bool, detail: str) -> None:
    rec, ack = make_user(handler).article_create()
    assert rec.op == "article.create"
    assert rec.outcome is outcome
    assert detail in rec.detail
    assert (ack is not None) is acked
    if ack is not None:
        assert isinstance(ack, ArticleAck)
        assert (ack.id, ack.worker, ack.acked_at) == ("7", 3, rec.end)
        assert ack.title == "drill run1 w3 #1"


def test_an_acknowledged_article_is_read_back_and_checked() -> None:
    stored: dict[str, dict[str, object]] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            stored["7"] = {"id": 7, **json.loads(request.content)}
            return httpx.Response(201, json={"id": 7})
        return httpx.Response(200, json=stored["7"])

    user = make_user(handler)
    _, ack = user.article_create()
    assert isinstance(ack, ArticleAck)
    assert ack.body_sha256 == sha256(str(stored["7"]["body"]).encode())
    assert user.article_read(ack)[0].outcome is Outcome.OK
    stored["7"]["body"] = "changed"
    rec, _ = user.article_read(ack)
    assert (rec.outcome, rec.ref, rec.detail) == (
        Outcome.MISMATCH,
        "7",
        "body differs from the acknowledged one",
    )


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        ([{"id": 8}, {"id": 9}], Outcome.OK),
        ([], Outcome.OK),
        ([{"id": 9}, {"id": 8}], Outcome.MISMATCH),
        ([{"id": 5}], Outcome.MISMATCH),  # not after 7
        ([{"id": i} for i in range(8, 20)], Outcome.MISMATCH),  # more than limit=10
        ([{"title": "no id"}], Outcome.MISMATCH),
        ({"results": []}, Outcome.MISMATCH),
    ],
)
def test_article_list(answer: object, outcome: Outcome) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=answer)

    rec, _ = make_user(handler).article_list(ArticleAck("7", "t", "d", 0.0, 0))
    assert rec.outcome is outcome
    assert dict(seen[0].url.params) == {"after": "7", "limit": "10"}


def media_handler(**override: object) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, content=b"other bytes")
        blob = request.read().split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n--", 1)[0]
        answer = {"key": "k1", "url": "/media/k1", "size": len(blob), "sha256": sha256(blob)}
        return httpx.Response(201, json={**answer, **override})

    return handler


@pytest.mark.parametrize(
    ("override", "outcome", "detail"),
    [
        ({}, Outcome.OK, ""),
        ({"sha256": "0" * 64}, Outcome.MISMATCH, "sha256"),
        ({"size": 1}, Outcome.MISMATCH, "size"),
        ({"url": "http://192.0.2.1/media/k1"}, Outcome.MISMATCH, "leaves the front door"),
        ({"key": None, "url": None}, Outcome.MISMATCH, "leaves the front door"),
    ],
)
def test_media_upload(override: dict[str, object], outcome: Outcome, detail: str) -> None:
    recent = Recent()
    rec, ack = make_user(media_handler(**override), recent).media_upload()
    assert rec.outcome is outcome
    assert detail in rec.detail
    assert (ack is not None) is (outcome is Outcome.OK)
    assert (recent.media(random.Random(0)) is not None) is (outcome is Outcome.OK)


def test_media_read_compares_bytes() -> None:
    media = MediaAck("k1", "/media/k1", sha256(b"abc"), 3, 0.0, 0)
    rec, _ = make_user(media_handler()).media_read(media)
    assert (rec.outcome, rec.ref) == (Outcome.MISMATCH, "k1")
    rec, _ = make_user(lambda r: httpx.Response(200, content=b"abc")).media_read(media)
    assert rec.outcome is Outcome.OK


class SessionServer:
    """Stores the last value written; can be told to fail writes or to set no cookie."""

    def __init__(self) -> None:
        self.value: object = {}
        self.fail_writes = False
        self.store_failed_writes = False
        self.cookie = True

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json=self.value)
        if self.fail_writes:
            if self.store_failed_writes:
                self.value = json.loads(request.content)
            return httpx.Response(504)
        self.value = json.loads(request.content)
        headers = {"set-cookie": "sessionid=s1; Path=/"} if self.cookie else {}
        return httpx.Response(200, json={"ok": True}, headers=headers)


def test_session_write_then_read_back() -> None:
    server = SessionServer()
    user = make_user(server)
    rec, ack = user.session_write()
    assert rec.outcome is Outcome.OK
    assert isinstance(ack, SessionAck) and ack.value == {"run": "run1", "worker": 3, "seq": 1}
    assert user.session_read()[0].outcome is Outcome.OK
    server.value = {"run": "run1", "worker": 3, "seq": 0}  # an older value: lost write
    rec, _ = user.session_read()
    assert rec.outcome is Outcome.MISMATCH
    assert "last acknowledged" in rec.detail


def test_session_value_of_a_write_with_unknown_outcome_is_accepted() -> None:
    server = SessionServer()
    user = make_user(server)
    user.session_write()
    server.fail_writes = server.store_failed_writes = True
    rec, ack = user.session_write()  # 504, but the server did store it
    assert (rec.outcome, ack) == (Outcome.HTTP_5XX, None)
    assert user.session_read()[0].outcome is Outcome.OK
    state = user.session_state()
    assert state is not None and state.value["seq"] == 2 and state.also_accept == ()


def test_session_state_keeps_unconfirmed_values_and_cookies() -> None:
    server = SessionServer()
    user = make_user(server)
    user.session_write()
    server.fail_writes = True
    user.session_write()
    state = user.session_state()
    assert state is not None
    assert state.value["seq"] == 1
    assert [v["seq"] for v in state.also_accept] == [2]
    assert state.cookies.get("sessionid") == "s1"


def test_session_write_without_cookie_is_not_acknowledged() -> None:
    server = SessionServer()
    server.cookie = False
    rec, ack = make_user(server).session_write()
    assert (rec.outcome, ack, rec.detail) == (Outcome.MISMATCH, None, "no session cookie set")


@pytest.mark.parametrize(
    ("response", "outcome"),
    [
        (httpx.Response(200, html="<html></html>"), Outcome.OK),
        (httpx.Response(302, headers={"location": "/en/"}), Outcome.OK),
        (httpx.Response(200, json={"not": "html"}), Outcome.MISMATCH),
        (httpx.Response(502), Outcome.HTTP_5XX),
    ],
)
def test_frontend(response: httpx.Response, outcome: Outcome) -> None:
    assert make_user(lambda r: response).frontend()[0].outcome is outcome


@pytest.mark.parametrize(
    ("op", "falls_back_to"),
    [
        ("article.read", "article.create"),
        ("article.list", "article.create"),
        ("media.read", "media.upload"),
        ("session.read", "session.write"),
    ],
)
def test_reads_with_nothing_to_read_write_first(op: str, falls_back_to: str) -> None:
    rec, _ = make_user(lambda r: httpx.Response(503)).run(op)
    assert rec.op == falls_back_to


def test_media_read_error_status_is_not_a_content_mismatch() -> None:
    media = MediaAck("k1", "/media/k1", sha256(b"abc"), 3, 0.0, 0)
    rec, _ = make_user(lambda r: httpx.Response(503, content=b"busy")).media_read(media)
    assert (rec.outcome, rec.error_class, rec.detail) == (
        Outcome.HTTP_5XX,
        None,
        "HTTP 503 Service Unavailable",
    )
