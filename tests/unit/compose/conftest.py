"""Fixtures of the compose tests (helpers live in compose_fixtures.py)."""

from __future__ import annotations

import pytest
from compose_fixtures import original_host_transport

from hapair.exec.recording import RecordingTransport


@pytest.fixture
def original_host() -> RecordingTransport:
    return original_host_transport()
