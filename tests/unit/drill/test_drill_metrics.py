"""Metrics from synthetic request records (hapair.drill.metrics), table-driven."""

from __future__ import annotations

import pytest

from hapair.drill.metrics import (
    ErrorWindow,
    Gap,
    error_windows,
    failure_reasons,
    longest,
    percentile,
    recovery_after,
    summarize,
    write_pause,
)
from hapair.drill.records import MISMATCH, Outcome, RequestRecord, classify

W, R, L = "article.create", "article.read", "article.list"


def rec(
    op: str,
    start: float,
    end: float | None = None,
    status: int | None = 200,
    err: str | None = None,
) -> RequestRecord:
    if status is None and err is None:
        err = "ConnectError"
    return RequestRecord(op, 0, start, start + 0.1 if end is None else end, status, err)


def ok(op: str, start: float, end: float | None = None) -> RequestRecord:
    return rec(op, start, end, 201 if op == W else 200)


def down(op: str, start: float, end: float | None = None) -> RequestRecord:
    return rec(op, start, end, None, "ConnectError")


def s503(op: str, start: float, end: float | None = None) -> RequestRecord:
    return rec(op, start, end, 503)


@pytest.mark.parametrize(
    ("status", "err", "expected"),
    [
        (200, None, Outcome.OK),
        (201, None, Outcome.OK),
        (302, None, Outcome.OK),
        (200, MISMATCH, Outcome.MISMATCH),
        (302, MISMATCH, Outcome.MISMATCH),
        (404, None, Outcome.HTTP_4XX),
        (400, None, Outcome.HTTP_4XX),
        (502, None, Outcome.HTTP_5XX),
        (503, None, Outcome.HTTP_5XX),
        (None, "ReadTimeout", Outcome.TRANSPORT),
        (None, "ConnectError", Outcome.TRANSPORT),
        (None, "InternalKeyError", Outcome.OTHER),
        (101, None, Outcome.OTHER),
    ],
)
def test_classify(status: int | None, err: str | None, expected: Outcome) -> None:
    assert classify(status, err) is expected


WINDOW_CASES = [
    pytest.param([ok(R, 0), ok(W, 1), ok(R, 2)], [], id="all ok"),
    pytest.param(
        [ok(R, 0), s503(R, 1), down(W, 1.5), ok(R, 4)],
        [ErrorWindow(None, 1, 4, 2, True)],
        id="failures between successes: first failure start to next success start",
    ),
    pytest.param(
        [s503(R, 0), s503(W, 0.5), ok(R, 2)],
        [ErrorWindow(None, 0, 2, 2, True)],
        id="run starts failing",
    ),
    pytest.param(
        [ok(R, 0), down(R, 1, 1.2), down(W, 2, 4.5)],
        [ErrorWindow(None, 1, 4.5, 2, False)],
        id="run ends failing: closes at the last end, not recovered",
    ),
    pytest.param(
        # The timeout started first, so the window opens at its start even though the
        # success that closes it ended before the timeout did.
        [ok(R, 0), down(R, 1, 3.5), ok(W, 1.2, 1.3), ok(R, 2)],
        [ErrorWindow(None, 1, 1.2, 1, True)],
        id="ordered by start time, not end time",
    ),
    pytest.param(
        [ok(R, 0), s503(R, 1), ok(R, 1.5), s503(W, 3), s503(W, 4), ok(R, 6)],
        [ErrorWindow(None, 1, 1.5, 1, True), ErrorWindow(None, 3, 6, 2, True)],
        id="two windows",
    ),
    pytest.param(
        [ok(R, 0), rec(R, 1, status=200, err=MISMATCH), rec(L, 2, status=404), ok(R, 3)],
        [ErrorWindow(None, 1, 3, 2, True)],
        id="mismatch and 4xx are failures",
    ),
    pytest.param(
        [ok(R, 0), rec(R, 1, status=302), ok(R, 3)],
        [],
        id="a redirect without mismatch is a success",
    ),
]


@pytest.mark.parametrize(("records", "expected"), WINDOW_CASES)
def test_error_windows(records: list[RequestRecord], expected: list[ErrorWindow]) -> None:
    assert error_windows(records) == expected


def test_per_op_window_shows_a_write_outage_that_reads_hide() -> None:
    records = [ok(W, 0), ok(R, 0.5), s503(W, 1), ok(R, 1.5), s503(W, 2), ok(R, 2.8), ok(W, 4)]
    m = summarize(records)
    assert m.longest_error_window == ErrorWindow(None, 2, 2.8, 1, True)
    assert m.by_op[W].longest_error_window == ErrorWindow(W, 1, 4, 2, True)
    assert m.by_op[R].longest_error_window is None


def test_longest_picks_the_longest_and_open_window_is_reported() -> None:
    windows = [ErrorWindow(None, 1, 5, 3, True), ErrorWindow(None, 8, 8.2, 1, False)]
    assert longest(windows) == windows[0]
    assert longest([]) is None
    m = summarize([ok(R, 0), s503(R, 1), ok(R, 5), s503(R, 8, 8.2)])
    assert m.longest_error_window == ErrorWindow(None, 1, 5, 1, True)
    assert m.open_error_window == ErrorWindow(None, 8, 8.2, 1, False)


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        pytest.param([], None, id="no records"),
        pytest.param(
            [ok(R, 0, 0.5), ok(W, 0.5, 1), ok(W, 1.5, 2), ok(W, 4.8, 5), ok(R, 5, 6)],
            Gap(2, 5),
            id="between two acknowledgements",
        ),
        pytest.param(
            [ok(W, 0, 0.1), s503(W, 1, 1.1), down(W, 2, 4.5), ok(R, 5, 6)],
            Gap(0.1, 6),
            id="failed writes do not end a pause; the tail counts",
        ),
        pytest.param(
            [ok(R, 0, 1), ok(R, 2, 3)],
            Gap(0, 3),
            id="no successful write: the whole run",
        ),
        pytest.param(
            [ok(R, 0, 3), ok(W, 3.1, 3.2), ok(W, 3.3, 3.4)],
            Gap(0, 3.2),
            id="the head counts",
        ),
        pytest.param(
            [ok("session.write", 0, 1), ok("media.upload", 2, 2.5), rec(W, 2.6, 3, 200, MISMATCH)],
            Gap(1, 2.5),
            id="media and session writes count; a mismatching write does not",
        ),
    ],
)
def test_write_pause(records: list[RequestRecord], expected: Gap | None) -> None:
    assert write_pause(records) == expected


@pytest.mark.parametrize(
    ("records", "t", "expected"),
    [
        pytest.param([ok(W, 9, 10.5), ok(W, 11, 11.5)], 10, 1.5, id="in flight at t: ignored"),
        pytest.param(
            [s503(W, 10, 10.1), down(W, 12), ok(W, 13, 13.2)], 10, 3.2, id="skip failures"
        ),
        pytest.param([ok(R, 11), ok(W, 14, 14.5)], 10, 4.5, id="reads do not count"),
        pytest.param([ok(W, 10, 12), ok(W, 10.5, 11)], 10, 1.0, id="first by end time"),
        pytest.param([ok(W, 1), s503(W, 11)], 10, None, id="never recovered"),
        pytest.param([], 10, None, id="no records"),
    ],
)
def test_recovery_after(records: list[RequestRecord], t: float, expected: float | None) -> None:
    got = recovery_after(records, t)
    assert got == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        ([], 50, None),
        ([3.0], 99, 3.0),
        ([2.0, 1.0], 50, 1.0),
        ([float(i) for i in range(100, 0, -1)], 50, 50.0),
        ([float(i) for i in range(1, 101)], 99, 99.0),
        ([float(i) for i in range(1, 11)], 99, 10.0),
    ],
)
def test_percentile_nearest_rank(values: list[float], p: float, expected: float | None) -> None:
    assert percentile(values, p) == expected


def test_summarize_counts_by_outcome_and_op() -> None:
    records = [
        ok(W, 0, 0.010),
        ok(R, 1, 1.020),
        s503(W, 2),
        rec(R, 3, status=404),
        down(L, 4),
        rec(R, 5, status=200, err=MISMATCH),
        ok(L, 6, 6.030),
    ]
    m = summarize(records)
    assert (m.requests, m.ok, m.failed, m.writes_ok) == (7, 3, 4, 1)
    assert m.by_outcome == {
        Outcome.HTTP_4XX: 1,
        Outcome.HTTP_5XX: 1,
        Outcome.TRANSPORT: 1,
        Outcome.MISMATCH: 1,
        Outcome.OTHER: 0,
    }
    assert list(m.by_op) == [W, R, L]  # the mix's order
    assert (m.by_op[R].requests, m.by_op[R].ok, m.by_op[R].failed) == (3, 1, 2)
    assert m.by_op[R].by_outcome[Outcome.HTTP_4XX] == 1
    assert m.by_op[R].by_outcome[Outcome.MISMATCH] == 1
    assert m.latency.max == pytest.approx(0.030)  # failures' durations are left out
    assert m.latency.p50 == pytest.approx(0.020)


def test_failure_reasons_grouped_most_frequent_first() -> None:
    records = [s503(W, 1), s503(W, 2), down(R, 3), s503(W, 4), ok(R, 5)]
    reasons = failure_reasons(records)
    assert [(r.op, r.outcome, r.status, r.error_class, r.count) for r in reasons] == [
        (W, Outcome.HTTP_5XX, 503, None, 3),
        (R, Outcome.TRANSPORT, None, "ConnectError", 1),
    ]


def test_empty_run() -> None:
    m = summarize([])
    assert (m.requests, m.failed, m.longest_error_window, m.write_pause) == (0, 0, None, None)
