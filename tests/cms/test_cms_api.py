"""The backend's HTTP contract, against real PostgreSQL, Redis and S3 (see cms/README.md)."""

from __future__ import annotations

import hashlib
import json
import os

import httpx
import pytest
from cms_stack import MEDIA_MAX_BYTES

pytestmark = pytest.mark.cms_stack


def create(backend: httpx.Client, title: str, body: str = "text") -> dict:
    response = backend.post("/api/articles/", json={"title": title, "body": body})
    assert response.status_code == 201, response.text
    return response.json()


def test_create_then_read_article(backend: httpx.Client) -> None:
    created = create(backend, "Hello HA", "first body")
    assert created["title"] == "Hello HA"
    assert created["body"] == "first body"
    assert isinstance(created["id"], int)
    assert created["created_at"]

    response = backend.get(f"/api/articles/{created['id']}/")
    assert response.status_code == 200
    assert response.json() == created


def test_unicode_title_round_trips(backend: httpx.Client) -> None:
    created = create(backend, "高可用 — ü" * 10)
    assert backend.get(f"/api/articles/{created['id']}/").json()["title"] == "高可用 — ü" * 10


def test_missing_article_is_json_404(backend: httpx.Client) -> None:
    for path in ("/api/articles/999999999/", "/api/articles/99999999999999999999999/"):
        response = backend.get(path)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


def test_list_pages_by_id_ascending(backend: httpx.Client) -> None:
    ids = [create(backend, f"page {n}")["id"] for n in range(5)]
    first = backend.get("/api/articles/", params={"after": ids[0] - 1, "limit": 2})
    assert first.status_code == 200
    assert [a["id"] for a in first.json()] == ids[:2]
    rest = backend.get("/api/articles/", params={"after": ids[1], "limit": 500}).json()
    assert [a["id"] for a in rest][:3] == ids[2:]
    assert [a["id"] for a in rest] == sorted(a["id"] for a in rest)


def test_list_newest_first_and_title_filter(backend: httpx.Client) -> None:
    marker = "needle-" + os.urandom(4).hex()
    older = create(backend, f"{marker} one")["id"]
    newer = create(backend, f"{marker.upper()} two")["id"]
    found = backend.get("/api/articles/", params={"q": marker, "order": "desc"}).json()
    assert [a["id"] for a in found] == [newer, older]


def test_list_default_limit_is_50(backend: httpx.Client) -> None:
    while len(backend.get("/api/articles/", params={"limit": 51}).json()) < 51:
        create(backend, "filler")
    assert len(backend.get("/api/articles/").json()) == 50


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "x"},
        {"after": "-1"},
        {"after": "1.5"},
        {"after": "99999999999999999999"},
        {"order": "sideways"},
    ],
)
def test_list_rejects_bad_params(backend: httpx.Client, params: dict) -> None:
    response = backend.get("/api/articles/", params=params)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_input"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"body": "no title"}, "title"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": 5}, "title"),
        ({"title": "ok", "body": 7}, "body"),
        ({"title": "nul\u0000byte"}, "title"),
        ({"title": "ok", "body": "lone \ud800 surrogate"}, "body"),
    ],
)
def test_create_rejects_invalid_article(backend: httpx.Client, payload: dict, field: str) -> None:
    # json.dumps escapes a lone surrogate as \ud800, which httpx's encoder would refuse.
    response = backend.post("/api/articles/", content=json.dumps(payload).encode())
    assert response.status_code == 400, response.text
    assert field in response.json()["fields"]


def test_title_of_200_characters_is_accepted(backend: httpx.Client) -> None:
    assert create(backend, "t" * 200)["title"] == "t" * 200


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe", b"[1, 2]", b"", b"[" * 100000])
def test_create_rejects_bad_json(backend: httpx.Client, content: bytes) -> None:
    response = backend.post(
        "/api/articles/", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_input"


def test_wrong_method_is_json_405(backend: httpx.Client) -> None:
    response = backend.delete("/api/articles/")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    assert "POST" in response.headers["allow"]


def test_unknown_paths_are_json_404(backend: httpx.Client) -> None:
    for path in ("/api/nope/", "/api/articles/abc/", "/", "/media/../../etc/passwd"):
        response = backend.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"] == "not_found"


def test_disallowed_host_is_json_400(backend: httpx.Client) -> None:
    response = backend.get("/api/articles/", headers={"host": "evil.example"})
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"


def test_responses_name_the_backend(backend: httpx.Client) -> None:
    response = backend.get("/health/liveness/")
    assert response.headers["x-served-by"] == "cms-backend"
    assert response.headers["x-cms-node"] == "cms-test-node"


def test_media_round_trip_returns_identical_bytes(backend: httpx.Client) -> None:
    payload = os.urandom(300_000) + b"\x00end"
    response = backend.post(
        "/api/media/", files={"file": ("../../Photo Of Me.PNG", payload, "image/png")}
    )
    assert response.status_code == 201, response.text
    meta = response.json()
    assert meta["size"] == len(payload)
    assert meta["sha256"] == hashlib.sha256(payload).hexdigest()
    assert meta["key"].endswith(".png") and "/" not in meta["key"]
    assert meta["url"] == f"/media/{meta['key']}"

    fetched = backend.get(meta["url"])
    assert fetched.status_code == 200
    assert fetched.content == payload
    assert fetched.headers["content-type"] == "image/png"

    head = backend.head(meta["url"])
    assert head.status_code == 200
    assert int(head.headers["content-length"]) == len(payload)


@pytest.mark.parametrize("extra", [1, 2_000_000])
def test_media_over_the_size_limit_is_413(backend: httpx.Client, extra: int) -> None:
    blob = b"x" * (MEDIA_MAX_BYTES + extra)
    response = backend.post("/api/media/", files={"file": ("big.bin", blob)})
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"


def test_media_keys_are_unique(backend: httpx.Client) -> None:
    keys = {
        backend.post("/api/media/", files={"file": ("same.txt", b"same")}).json()["key"]
        for _ in range(3)
    }
    assert len(keys) == 3


def test_media_upload_without_file_is_400(backend: httpx.Client) -> None:
    assert backend.post("/api/media/", data={"other": "x"}).status_code == 400
    assert backend.post("/api/media/", json={"file": "x"}).status_code == 400
    broken = backend.post(
        "/api/media/",
        content=b"--x\r\nbroken",
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert broken.status_code == 400
    assert broken.json()["error"]


def test_missing_media_is_json_404(backend: httpx.Client) -> None:
    response = backend.get("/media/" + "0" * 32 + ".png")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_session_round_trip_with_cookie(backend: httpx.Client, stack) -> None:
    base = str(backend.base_url)
    with httpx.Client(base_url=base, timeout=15) as browser:
        assert browser.get("/api/session/").json() == {}
        stored = browser.post("/api/session/", json={"cart": [1, 2], "name": "Zoë"})
        assert stored.status_code == 200
        assert "sessionid" in browser.cookies
        assert browser.get("/api/session/").json() == {"cart": [1, 2], "name": "Zoë"}
    # A client without the cookie sees nothing.
    with httpx.Client(base_url=base, timeout=15) as stranger:
        assert stranger.get("/api/session/").json() == {}


def test_session_lives_in_redis(backend: httpx.Client, stack) -> None:
    before = set(stack.redis_client().scan_iter("cms:*session*"))
    with httpx.Client(base_url=str(backend.base_url), timeout=15) as browser:
        browser.post("/api/session/", json={"k": "v"})
    assert set(stack.redis_client().scan_iter("cms:*session*")) - before


def test_session_rejects_non_object(backend: httpx.Client) -> None:
    assert backend.post("/api/session/", json=[1]).status_code == 400
    assert backend.post("/api/session/", content=b"nope").status_code == 400
