"""The report document and its rendering (hapair.drill.report), and the record file."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from hapair.drill.checker import CheckResult, MissingWrite
from hapair.drill.load import LoadConfig, LoadResult
from hapair.drill.recorder import RecordWriter, read_records
from hapair.drill.records import ArticleAck, MediaAck, RequestRecord, SessionAck
from hapair.drill.report import build_report, render_table

T0 = 1000.0
STARTED = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
W, R = "article.create", "article.read"


def result(records: list[RequestRecord], acks: list[object]) -> LoadResult:
    return LoadResult(
        run_id="r1",
        base_url="http://10.99.0.10/",
        seed=5,
        config=LoadConfig(url="http://10.99.0.10/"),
        started_mono=T0,
        started_wall=STARTED,
        ended_mono=T0 + 10,
        stopped_by="duration",
        records=tuple(records),
        acks=tuple(acks),  # type: ignore[arg-type]
        sessions=(),
    )


CLEAN = [
    RequestRecord(W, 0, T0 + 0.0, T0 + 0.1, 201),
    RequestRecord(R, 1, T0 + 1.0, T0 + 1.05, 200),
    RequestRecord(W, 0, T0 + 2.0, T0 + 2.2, 201),
]
ACKS = [
    ArticleAck("1", "t1", "d1", T0 + 0.1, 0),
    ArticleAck("2", "t2", "d2", T0 + 2.2, 0),
    MediaAck("k", "/media/k", "s", 3, T0 + 2.5, 1),
    SessionAck(1, {"seq": 1}, T0 + 3.0),
]


def check_result(lost: list[MissingWrite] | None = None) -> CheckResult:
    lost = lost or []
    return CheckResult(3, 3 - len(lost), tuple(lost), (), 1, 0.2)


def test_clean_run_is_ok() -> None:
    report = build_report(result(CLEAN, ACKS), check_result())
    doc = report.to_dict()
    assert report.ok and doc["ok"] is True
    assert doc["requests"] == {
        "total": 3,
        "ok": 3,
        "failed": 0,
        "http_4xx": 0,
        "http_5xx": 0,
        "transport": 0,
        "mismatch": 0,
        "other": 0,
    }
    assert doc["writes"]["acknowledged"] == {"article": 2, "media": 1, "session": 1}
    assert doc["write_pause"] == {"seconds": 2.1, "from_s": 0.1, "to_s": 2.2}
    assert doc["longest_error_window"] is None
    assert doc["latency_ms"]["max"] == 200.0
    assert json.loads(json.dumps(doc)) == doc  # one plain JSON document


def test_lost_write_fails_and_says_when_it_was_acknowledged() -> None:
    lost = MissingWrite("article", "2", "t2", 0, T0 + 2.2, "HTTP 404")
    report = build_report(result(CLEAN, ACKS), check_result([lost]))
    doc = report.to_dict()
    assert not report.ok
    assert doc["writes"]["lost"] == [
        {
            "kind": "article",
            "ref": "2",
            "what": "t2",
            "worker": 0,
            "acked_at_s": 2.2,
            "acked_at": "2025-01-02T03:04:07.200000+00:00",
            "reason": "HTTP 404",
        }
    ]
    assert doc["summary"] == "0 failed of 3 requests; 1 lost and 0 unverified of 3 checked writes"


def test_failed_requests_fail_the_report_and_windows_are_relative() -> None:
    records = [*CLEAN, RequestRecord(W, 0, T0 + 3, T0 + 5.5, None, "ReadTimeout")]
    records.append(RequestRecord(W, 0, T0 + 6, T0 + 6.1, 201))
    report = build_report(result(records, ACKS), check_result(), faults={"kill": T0 + 2.9})
    doc = report.to_dict()
    assert not report.ok
    assert doc["requests"]["failed"] == doc["requests"]["transport"] == 1
    assert doc["longest_error_window"] == {
        "op": None,
        "start_s": 3.0,
        "end_s": 6.0,
        "seconds": 3.0,
        "failures": 1,
        "recovered": True,
    }
    assert doc["by_op"][W]["longest_error_window"]["op"] == W
    assert doc["recovery"] == {"kill": {"fault_at_s": 2.9, "seconds": 3.2}}
    assert doc["failure_reasons"][0] == {
        "op": W,
        "outcome": "transport",
        "status": None,
        "error": "ReadTimeout",
        "count": 1,
        "example": "",
    }


def test_unchecked_writes_are_not_ok() -> None:
    report = build_report(result(CLEAN, ACKS), None)
    assert not report.ok
    assert report.to_dict()["writes"]["checked"] is None


def render(doc: dict[str, object]) -> str:
    out = io.StringIO()
    render_table(doc, Console(file=out, width=200, color_system=None))
    return out.getvalue()


def test_table_shows_verdict_counts_and_lost_writes() -> None:
    lost = MissingWrite("media", "k", "/media/k", 1, T0 + 2.5, "content differs")
    text = render(build_report(result(CLEAN, ACKS), check_result([lost])).to_dict())
    assert text.startswith("FAIL drill r1 against http://10.99.0.10/")
    assert "Writes not found intact" in text
    assert "/media/k" in text and "content differs" in text and "+2.5s" in text
    assert "PASS drill r1" in render(build_report(result(CLEAN, ACKS), check_result()).to_dict())


def test_record_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    writer = RecordWriter(path)
    writer.write("run", {"run_id": "r1"})
    for rec in CLEAN:
        writer.request(rec)
    for ack in ACKS:
        writer.ack(ack)
    writer.close()
    writer.request(CLEAN[0])  # after close: ignored, not an error
    header, records, acks = read_records(path)
    assert header == {"run_id": "r1"}
    assert records == CLEAN
    assert acks == ACKS
    assert "cookies" not in path.read_text()


def test_server_text_is_shown_literally_not_as_markup() -> None:
    lost = MissingWrite("article", "9", "[bold]title[/bold]", 0, T0 + 1, "HTTP 404 [red]x")
    text = render(build_report(result(CLEAN, ACKS), check_result([lost])).to_dict())
    assert "[bold]title[/bold]" in text and "HTTP 404 [red]x" in text
