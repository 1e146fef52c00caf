"""Fixtures: a fake CMS on loopback (ports 18600-18699) and load generators cleaned up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from drill_fake_cms import FakeCMS

from hapair.drill.load import LoadConfig, LoadGenerator


@pytest.fixture
def cms() -> Iterator[FakeCMS]:
    server = FakeCMS().start()
    try:
        yield server
    finally:
        server.down()


@pytest.fixture
def start_load(cms: FakeCMS) -> Iterator[Callable[..., LoadGenerator]]:
    """Start a load against the fake CMS; any left running is stopped at teardown."""
    started: list[LoadGenerator] = []

    def start(**kwargs: Any) -> LoadGenerator:
        settings: dict[str, Any] = {"rate": 200.0, "workers": 3, "seed": 7, "duration": None}
        config = LoadConfig(url=cms.url, **{**settings, **kwargs})
        gen = LoadGenerator(config).start()
        started.append(gen)
        return gen

    yield start
    for gen in started:
        gen.stop()
        gen.wait_done(10)
