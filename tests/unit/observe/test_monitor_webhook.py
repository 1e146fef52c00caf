"""WebhookSender with a scripted post(): delivery to every URL, retry on the next round, one
failure per URL per round, giving up after max_attempts, tokens never in reports."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from hapair.errors import UsageError
from hapair.monitor.webhook import WebhookSender, shown

A = "https://hooks.example.com/services/T0/SECRET-TOKEN"
B = "http://127.0.0.1:18950/hook"


class Receiver:
    def __init__(self) -> None:
        self.down: set[str] = set()
        self.got: list[tuple[str, str]] = []
        self.calls = 0

    def __call__(self, url: str, body: dict[str, Any]) -> int:
        self.calls += 1
        if url in self.down:
            raise httpx.ConnectError(f"connection refused to {url}")
        self.got.append((url, body["alert"]))
        return 204


def body(name: str) -> dict[str, Any]:
    return {"alert": name, "status": "firing"}


def test_every_notification_to_every_url() -> None:
    r = Receiver()
    report = WebhookSender([A, B], r).send([body("x"), body("y")])
    assert report.ok and report.sent == 4
    assert r.got == [(A, "x"), (B, "x"), (A, "y"), (B, "y")]


def test_a_dead_url_is_tried_once_per_round_and_retried_later() -> None:
    r = Receiver()
    r.down.add(A)
    s = WebhookSender([A, B], r, max_attempts=3)
    report = s.send([body("x"), body("y")])
    assert report.sent == 2 and len(report.failed) == 1 and r.calls == 3
    assert "SECRET-TOKEN" not in report.failed[0]
    assert report.failed[0] == "https://hooks.example.com/… x firing: ConnectError"
    r.down.clear()
    report = s.send([])
    assert report.ok and report.sent == 2 and (A, "x") in r.got and (A, "y") in r.got
    assert s.pending == []


def test_gives_up_after_max_attempts() -> None:
    r = Receiver()
    r.down.add(B)
    s = WebhookSender([B], r, max_attempts=2)
    assert s.send([body("x")]).dropped == 0
    assert s.send([]).dropped == 1
    assert s.pending == []


def test_non_2xx_is_a_failure() -> None:
    s = WebhookSender([B], lambda _u, _b: 500)
    report = s.send([body("x")])
    assert report.failed == ["http://127.0.0.1:18950/… x firing: HTTP 500"]
    assert len(s.pending) == 1


def test_pending_survive_a_restart_for_configured_urls_only() -> None:
    r = Receiver()
    r.down.add(B)
    s = WebhookSender([B], r)
    s.send([body("x")])
    again = WebhookSender([B], r)
    again.restore(s.to_list() + [{"url": "http://gone/", "body": body("z")}])
    r.down.clear()
    assert again.send([]).sent == 1 and r.got == [(B, "x")]


@pytest.mark.parametrize("url", ["ftp://x/y", "hooks.example.com/x", "http://"])
def test_bad_urls_are_usage_errors(url: str) -> None:
    with pytest.raises(UsageError, match="expected an http:// or https:// URL"):
        WebhookSender([url])


def test_shown_hides_path_and_credentials() -> None:
    assert shown("https://user:pw@hooks.example.com:8443/a/b?token=x") == (
        "https://hooks.example.com:8443/…")
