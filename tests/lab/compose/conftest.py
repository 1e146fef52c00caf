"""The compose lab tests get a BARE lab of their own, per module (hosts only: no native
single-server stack on node1; the stacks here run in Docker engines on the hosts). It
overrides the session `lab` of tests/lab/conftest.py, and is down before the next module's."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from lab_helpers import Lab, fresh_lab


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    with fresh_lab(request.session, "compose", bare=True) as lab:
        yield lab
