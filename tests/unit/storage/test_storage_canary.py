from collections.abc import Callable

import pytest

from hapair.components.storage.canary import PREFIX, canary_body, canary_key, read_back


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def scripted(*answers: object) -> Callable[[], bytes | None]:
    """fetch() returning the answers in order (an Exception instance is raised), then the last."""
    queue = list(answers)

    def fetch() -> bytes | None:
        a = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(a, Exception):
            raise a
        return a  # type: ignore[return-value]

    return fetch


BODY = b"canary-bytes"

# (answers, ok, delay, attempts, last_seen)
CASES = [
    ("at once", [BODY], True, 0.0, 1, "match"),
    ("after two polls", [None, None, BODY], True, 1.0, 3, "match"),
    ("stale then right", [b"old", BODY], True, 0.5, 2, "match"),
    ("error then right", [ConnectionError("refused"), BODY], True, 0.5, 2, "match"),
    ("never", [None], False, None, 21, "absent"),
    ("always different", [b"xx"], False, None, 21, "different (2 bytes, expected 12)"),
    ("always error", [TimeoutError("slow")], False, None, 21, "error: TimeoutError: slow"),
]


@pytest.mark.parametrize(("name", "answers", "ok", "delay", "attempts", "last"), CASES,
                         ids=[c[0] for c in CASES])
def test_read_back(name: str, answers: list[object], ok: bool, delay: float | None,
                   attempts: int, last: str) -> None:
    clock = FakeClock()
    r = read_back("k", "node1", "node2", BODY, scripted(*answers), acked_at=clock.now,
                  timeout_s=10.0, interval_s=0.5, clock=clock, sleep=clock.sleep)
    assert (r.ok, r.attempts, r.last_seen) == (ok, attempts, last)
    if delay is None:
        assert r.delay_s is None
        assert r.waited_s == pytest.approx(10.0)  # bounded: stops at the timeout, not after
        assert r.check().reason.startswith("canary written on node1 not readable intact on "
                                           "node2 after 10.0s")
    else:
        assert r.delay_s == pytest.approx(delay)
        assert r.check().ok


def test_canary_key_and_body() -> None:
    key = canary_key(1795657548.9, "abcd")
    assert key == f"{PREFIX}20261126T014548-abcd.bin"
    body = canary_body("abcd", 100)
    assert len(body) == 100 and body == canary_body("abcd", 100)
    assert body != canary_body("abce", 100)
    assert len(canary_body("t", 0)) == 0
