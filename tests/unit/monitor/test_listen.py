"""`hapair monitor --listen`: what it accepts and the errors it gives."""

from __future__ import annotations

import pytest

from hapair.errors import UsageError
from hapair.monitor.server import parse_listen


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:9187", ("127.0.0.1", 9187)),
    ("[::1]:9187", ("::1", 9187)),
    ("0.0.0.0:9187", ("0.0.0.0", 9187)),
    ("127.0.0.1:0", ("127.0.0.1", 0)),  # the kernel picks; the monitor logs the port
])
def test_accepted(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("localhost:9187", "expected ADDRESS:PORT"),
    ("127.0.0.1", "expected ADDRESS:PORT"),
    ("127.0.0.1:http", "expected ADDRESS:PORT"),
    ("127.0.0.1:65536", "within 0-65535"),
    ("127.0.0.1:-1", "within 0-65535"),
])
def test_refused(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_listen(text)
