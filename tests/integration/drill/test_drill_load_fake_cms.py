"""The load generator and checker against a fake CMS that fails and loses on demand."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from drill_fake_cms import FakeCMS, wait_until

from hapair.drill import build_report, check_writes
from hapair.drill.load import LoadGenerator
from hapair.drill.records import OPS, ArticleAck, MediaAck, Outcome, SessionAck

Start = Callable[..., LoadGenerator]


def test_clean_run_reports_zero_failures_and_zero_lost(cms: FakeCMS, start_load: Start) -> None:
    gen = start_load(max_requests=300)
    wait_until(gen.done, "300 requests")
    result = gen.wait()  # no duration, not stopped, but done: returns at once
    check = check_writes(result, retry_for=0.5)
    report = build_report(result, check)
    m = result.metrics()
    assert result.stopped_by == "max_requests"
    assert (m.requests, m.failed) == (300, 0)
    assert set(m.by_op) == set(OPS)  # every op of the mix ran
    assert cms.requests == 300 + check.checked  # the load plus one read per checked write
    articles = [a for a in result.acks if isinstance(a, ArticleAck)]
    media = [a for a in result.acks if isinstance(a, MediaAck)]
    assert {a.id for a in articles} == {str(i) for i in cms.articles}
    assert {a.key for a in media} == set(cms.media)
    assert check.checked == len(articles) + len(media) + len(result.sessions)
    assert (check.verified, check.lost, check.unverified) == (check.checked, (), ())
    assert report.ok and report.to_dict()["ok"] is True


def test_503_window_is_reported_exactly(cms: FakeCMS, start_load: Start) -> None:
    cms.fail_after(40, 25)
    result = start_load(max_requests=250).wait(timeout=60)
    m = result.metrics()
    assert sum(cms.injected.values()) == 25
    assert m.failed == m.by_outcome[Outcome.HTTP_5XX] == 25
    by_op = {op: s.by_outcome[Outcome.HTTP_5XX] for op, s in m.by_op.items()}
    assert {op: n for op, n in by_op.items() if n} == dict(cms.injected)
    window = m.longest_error_window
    assert window is not None and window.recovered and 1 <= window.failures <= 25
    check = check_writes(result, retry_for=0.5)
    assert check.ok  # a 503 is not an acknowledgement: nothing acknowledged went missing
    report = build_report(result, check)
    assert not report.ok and report.to_dict()["requests"]["http_5xx"] == 25


def test_connection_refused_window(cms: FakeCMS, start_load: Start) -> None:
    gen = start_load(rate=100.0, max_requests=5000)
    wait_until(lambda: cms.requests >= 30, "30 requests served")
    cms.down()
    wait_until(lambda: gen.progress().failed >= 10, "10 failures while down")
    cms.up()
    t_up = gen.progress().requests
    wait_until(lambda: gen.progress().requests >= t_up + 40, "40 requests after up")
    gen.stop()
    result = gen.wait()
    m = result.metrics()
    failures = [r for r in result.records if not r.ok]
    assert m.failed == len(failures) >= 10
    assert {r.outcome for r in failures} == {Outcome.TRANSPORT}
    # Refused while the port is closed; a connection caught in the closing backlog is reset.
    assert "ConnectError" in {r.error_class for r in failures}
    # The outage is the longest window, and it ended: requests succeeded after up().
    # (Its exact start is not asserted: a request caught in the closing accept backlog can
    # fail just before one that another thread had connected a moment earlier succeeds.)
    window = m.longest_error_window
    assert window is not None and window.recovered and window.failures >= 10
    first_refused = min(r.start for r in failures if r.error_class == "ConnectError")
    assert result.recovery_after(first_refused) is not None
    assert check_writes(result, retry_for=0.5).ok


def test_acknowledged_but_unstored_article_is_reported_lost(
    cms: FakeCMS, start_load: Start
) -> None:
    cms.lose_next_article()
    result = start_load(max_requests=200).wait(timeout=60)
    (lost_id,) = cms.lost_article_ids
    acked = {a.id: a for a in result.acks if isinstance(a, ArticleAck)}
    assert str(lost_id) in acked  # the server did acknowledge it
    check = check_writes(result, retry_for=0.3)
    assert [(x.kind, x.ref, x.reason, x.acked_at) for x in check.lost] == [
        ("article", str(lost_id), "HTTP 404", acked[str(lost_id)].acked_at)
    ]
    assert check.unverified == ()
    # During the load only reads of that very article failed.
    failed = {(r.op, r.status, r.ref) for r in result.records if not r.ok}
    assert failed <= {("article.read", 404, str(lost_id))}
    report = build_report(result, check).to_dict()
    assert not report["ok"] and report["writes"]["lost"][0]["ref"] == str(lost_id)


def test_damage_after_the_load_is_found_item_by_item(cms: FakeCMS, start_load: Start) -> None:
    result = start_load(max_requests=300).wait(timeout=60)
    articles = [a for a in result.acks if isinstance(a, ArticleAck)]
    media = [a for a in result.acks if isinstance(a, MediaAck)]
    cms.drop_article(int(articles[3].id))
    cms.corrupt_media(media[0].key)
    cms.drop_sessions()
    check = check_writes(result, retry_for=0.3)
    lost = Counter((x.kind, x.ref, x.reason.split(" (")[0]) for x in check.lost)
    expected = Counter(
        [("article", articles[3].id, "HTTP 404"), ("media", media[0].key, "content differs")]
        + [("session", f"worker-{s.worker}", "session holds {}") for s in result.sessions]
    )
    assert lost == expected
    assert len(result.sessions) == 3
    assert check.verified == check.checked - len(check.lost)


def test_checker_rides_out_a_final_outage(cms: FakeCMS, start_load: Start) -> None:
    result = start_load(max_requests=120, mix={"article.create": 1, "media.upload": 1}).wait(60)
    cms.fail_after(cms.requests, 5)  # the checker's first five reads get 503
    check = check_writes(result, retry_for=10.0, retry_interval=0.05)
    assert sum(cms.injected.values()) == 5
    assert check.ok and check.rounds >= 2 and check.verified == len(result.acks)


def test_checker_reports_unverified_when_the_server_stays_down(
    cms: FakeCMS, start_load: Start
) -> None:
    result = start_load(max_requests=60).wait(timeout=60)
    cms.down()
    check = check_writes(result, retry_for=0.2, retry_interval=0.05, check_sessions=False)
    assert check.lost == ()
    assert len(check.unverified) == check.checked > 0
    assert {x.reason for x in check.unverified} == {"no answer (ConnectError)"}
    # Sessions were not asked for: only articles and media were checked.
    assert check.checked == sum(1 for a in result.acks if not isinstance(a, SessionAck))


def test_stop_from_a_caller_event_and_record_file(cms: FakeCMS, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import threading

    from hapair.drill.load import LoadConfig
    from hapair.drill.recorder import read_records

    stop = threading.Event()
    path = tmp_path / "run.jsonl"
    config = LoadConfig(url=cms.url, duration=60, rate=100, workers=2, seed=3, record_path=path)
    gen = LoadGenerator(config, stop_event=stop).start()
    try:
        wait_until(lambda: gen.progress().requests >= 20, "20 requests")
        stop.set()
        result = gen.wait()
    finally:
        gen.stop()
    assert result.stopped_by == "stop"
    header, records, acks = read_records(path)
    assert header["run_id"] == result.run_id and header["url"] == cms.url
    assert records == list(result.records)
    assert acks == list(result.acks)  # session cookies stay out of the file
    assert "sessionid" not in path.read_text()
