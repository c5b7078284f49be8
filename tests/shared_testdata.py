"""Where the shared test vectors are, and what a missing folder means.

The known-answer vectors (RFC 9162 Merkle proofs, signed notes) live outside the
repository, in `../shared/testdata` next to the checkout; MUTUALMIND_TESTDATA names another
folder (a git worktree elsewhere). Without them a developer's run skips the vector tests.
CI sets MUTUALMIND_REQUIRE_TESTDATA=1 (`.ci/run`): there a missing folder fails the run,
so a green build always means the vectors were checked.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_TESTDATA = Path(os.environ.get("MUTUALMIND_TESTDATA") or REPO.parent / "shared" / "testdata")
REQUIRED = os.environ.get("MUTUALMIND_REQUIRE_TESTDATA", "") not in ("", "0")


def needs_testdata(path: Path) -> pytest.MarkDecorator:
    """Skip when `path` is missing, unless the vectors are required (then the test runs)."""
    return pytest.mark.skipif(not path.exists() and not REQUIRED,
                              reason=f"shared test vectors not found at {path}")


def require(path: Path) -> Path:
    """`path`, or a failure saying where the vectors were looked for and how to point there."""
    if not path.exists():
        pytest.fail(f"shared test vectors not found at {path} (MUTUALMIND_REQUIRE_TESTDATA is "
                    "set); put them in ../shared/testdata or set MUTUALMIND_TESTDATA", pytrace=False)
    return path
