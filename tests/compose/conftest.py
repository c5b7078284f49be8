"""A failed compose test's report carries every member's log, taken at the failure
(before a later test's `down` and `up` replace the containers)."""

from __future__ import annotations

import shutil
from collections.abc import Generator
from typing import Any

import pytest

from tests.compose.cluster import ComposeCluster


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if (report.failed and report.when == "call" and "market" in getattr(item, "fixturenames", ())
            and shutil.which("podman")):
        report.sections.append(("compose member logs (the last 60 lines of each)",
                                ComposeCluster().member_logs()))
