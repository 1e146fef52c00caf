"""Lab fixtures: one `hapair lab up` per session, `lab down` at the end even on failure.

The CLI is run as a real subprocess (exit codes and stdout/stderr as a user sees them). When
a test failed, the hosts' logs (/var/log of each host, its console) are copied to
runs/lab-logs-<time>/ before the lab is torn down.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from lab_helpers import Lab, fresh_lab


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    with fresh_lab(request.session) as lab:
        yield lab
