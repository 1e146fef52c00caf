"""The switchover's timeline: milestones relative to the start of the write pause."""

import pytest

from hapair.workflows.ops.timeline import Timeline


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_marks_are_relative_to_the_pause_and_recorded_once() -> None:
    clock = Clock()
    tl = Timeline(clock=clock, wall=lambda: 1_700_000_000.0 + clock.now - 100.0)
    tl.start()
    clock.now = 100.25
    assert tl.mark("pause_done") == pytest.approx(0.25)
    clock.now = 101.5
    tl.mark("router_node2_switched")
    clock.now = 101.0  # a mark taken earlier by another thread lands in order
    tl.mark("router_node1_switched")
    clock.now = 103.0
    assert tl.mark("pause_done") == pytest.approx(0.25)  # a milestone happens once
    doc = tl.as_dict()
    assert doc["started_at_epoch"] == 1_700_000_000.0
    assert list(doc["events_s"].items()) == [
        ("pause_done", 0.25), ("router_node1_switched", 1.0), ("router_node2_switched", 1.5)]
    assert tl.wall_at("router_node1_switched") == 1_700_000_001.0
    assert tl.seconds("resume_done") is None and tl.wall_at("resume_done") is None


def test_mark_before_start_is_a_bug() -> None:
    with pytest.raises(RuntimeError):
        Timeline().mark("pause_done")
    assert Timeline().as_dict() == {"started_at_epoch": None, "events_s": {}}
