"""Generic JSON webhooks: POST each notification's body to every URL, bounded, with retry.

A notification that cannot be delivered stays queued and is retried on the next poll (up to
`max_attempts`); after one failure a URL is not tried again in the same round, so a dead
receiver costs one timeout per poll, not one per alert. A webhook URL often carries a token
(Slack, WeChat Work): logs and errors name only its scheme and host.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from hapair.errors import UsageError

POST_TIMEOUT = 5.0
Post = Callable[[str, dict[str, Any]], int]


def http_post(url: str, body: dict[str, Any]) -> int:
    r = httpx.post(url, json=body, timeout=POST_TIMEOUT, trust_env=False,
                   follow_redirects=False, headers={"User-Agent": "hapair-monitor"})
    return r.status_code


def shown(url: str) -> str:
    """`https://hooks.example.com/…`: enough to tell webhooks apart, never the token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"--webhook {shown(url) if parts.netloc else '…'}: expected an "
                         "http:// or https:// URL")
    return url


@dataclass
class Delivery:
    url: str
    body: dict[str, Any]
    attempts: int = 0


@dataclass
class Report:
    sent: int = 0
    failed: list[str] = field(default_factory=list)  # one line per failed attempt
    dropped: int = 0  # gave up after max_attempts

    @property
    def ok(self) -> bool:
        return not self.failed and not self.dropped


class WebhookSender:
    def __init__(self, urls: Sequence[str], post: Post | None = None, *, max_attempts: int = 5,
                 max_queue: int = 500) -> None:
        self.urls = [check_url(u) for u in urls]
        self.post = post or http_post
        self.max_attempts = max_attempts
        self.max_queue = max_queue
        self.pending: list[Delivery] = []

    def send(self, bodies: Sequence[dict[str, Any]]) -> Report:
        queue = self.pending + [Delivery(u, b) for b in bodies for u in self.urls]
        report = Report()
        self.pending = []
        broken: set[str] = set()
        for d in queue:
            if d.url in broken:
                self.pending.append(d)
                continue
            error = self._deliver(d)
            if error is None:
                report.sent += 1
                continue
            broken.add(d.url)
            d.attempts += 1
            report.failed.append(f"{shown(d.url)} {d.body.get('alert')} "
                                 f"{d.body.get('status')}: {error}")
            if d.attempts >= self.max_attempts:
                report.dropped += 1
            else:
                self.pending.append(d)
        if len(self.pending) > self.max_queue:  # oldest first out
            report.dropped += len(self.pending) - self.max_queue
            self.pending = self.pending[-self.max_queue:]
        return report

    def _deliver(self, d: Delivery) -> str | None:
        try:
            status = self.post(d.url, d.body)
        except httpx.HTTPError as exc:
            return type(exc).__name__  # the message may repeat the URL (and its token)
        except OSError as exc:
            return exc.strerror or type(exc).__name__
        return None if 200 <= status < 300 else f"HTTP {status}"

    def to_list(self) -> list[dict[str, Any]]:
        return [{"url": d.url, "body": d.body, "attempts": d.attempts} for d in self.pending]

    def restore(self, items: Sequence[dict[str, Any]]) -> None:
        """Pending deliveries from the state file, for the URLs still configured."""
        self.pending = [Delivery(i["url"], i["body"], int(i.get("attempts", 0)))
                        for i in items if isinstance(i, dict) and i.get("url") in self.urls]
