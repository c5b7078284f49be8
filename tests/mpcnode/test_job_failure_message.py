"""A failed job's message travels to the public Market API (a round's last failure), so it
must not carry the node's internal paths: the log names them, the caller gets the job id.

The worker here is a real process that dies without writing its error file (a crash);
the runner is the real `JobRunner`.
"""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from mpcnode.jobs import JobRequest, JobRunner
from mutualmind.vocabulary.signing_keys import generate_signing_key
from tests.certs import ClusterCertsFactory
from tests.mpcnode.worker.cluster import job_plane


def test_a_crashed_worker_reports_its_job_id_not_its_log_path(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, cluster_certs: ClusterCertsFactory
) -> None:
    crash = tmp_path / "crashing-python"
    crash.write_text("#!/bin/sh\necho 'Traceback: secret detail' >&2\nexit 3\n")
    crash.chmod(crash.stat().st_mode | stat.S_IXUSR)
    runner = JobRunner(tmp_path, generate_signing_key(), python=str(crash), certs_dir=cluster_certs(2).folder)
    with caplog.at_level(logging.ERROR, logger="mpcnode.jobs"):
        job_id = runner.start(JobRequest(
            job_id="job-7", round_id="r", world_size=2, rank=0, master_addr="127.0.0.1",
            master_port=29999, dataset_ids=("a",), validation_dataset_id="v",
            model_spec_json='{"kind": "logistic"}', job_digest=bytes(32), deadline_s=30.0,
            **job_plane(2)))  # type: ignore[arg-type]
        status = runner.wait(job_id, timeout=20)
    assert status.state == "failed" and status.error_code == "internal"
    assert status.message.startswith("job job-7: worker exited with status 3")
    assert str(tmp_path) not in status.message and "/" not in status.message
    assert "secret detail" not in status.message
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert str(tmp_path / "jobs" / "job-7" / "worker.log") in logged
