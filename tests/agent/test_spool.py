"""The spool: numbered, durable, ordered, one agent at a time; survives a killed process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from computelease.agent.errors import SpoolError
from computelease.agent.spool import Spool
from computelease.telemetry.schemas import GpuSample, HeartbeatBody

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def body(minute: int = 0) -> HeartbeatBody:
    return HeartbeatBody(
        at=T0 + timedelta(minutes=minute),
        interval_s=60,
        gpus=[GpuSample(index=0, uuid="GPU-a", temperature_c=50, xids=[13])],
    )


def test_sequence_survives_reopening_and_acks(tmp_path) -> None:
    path = tmp_path / "spool.db"
    with Spool(path, node="N1", first_seq=1) as spool:
        seqs = [spool.append(body(i)).seq for i in range(5)]
        assert seqs == [1, 2, 3, 4, 5] and len(spool) == 5
        assert spool.ack([1, 2]) == 2
    with Spool(path, node="N1", first_seq=999) as spool:  # first_seq only applies to a new spool
        assert [h.seq for h in spool.pending(10)] == [3, 4, 5]
        assert spool.pending(10)[0].gpus[0].xids == [13] and spool.pending(10)[0].at == T0 + timedelta(
            minutes=2
        )
        spool.ack([3, 4, 5])
        assert spool.append(body(9)).seq == 6  # never reused, even with the spool empty
        assert spool.stats()["pending"] == 1


def test_a_new_spool_numbers_above_any_lost_one(tmp_path) -> None:
    with Spool(tmp_path / "a.db", node="N1") as old:
        last = [old.append(body(i)).seq for i in range(3)][-1]
    (tmp_path / "a.db").unlink()  # the disk was replaced
    with Spool(tmp_path / "a.db", node="N1") as fresh:
        assert fresh.append(body()).seq > last


def test_one_agent_per_spool_and_one_node_per_spool(tmp_path) -> None:
    path = tmp_path / "spool.db"
    with Spool(path, node="N1"), pytest.raises(SpoolError, match="another agent is using the spool"):
        Spool(path, node="N1")
    with pytest.raises(SpoolError, match="belongs to node N1, not N2"):
        Spool(path, node="N2")
    (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
    with pytest.raises(SpoolError, match="cannot be used"):
        Spool(tmp_path / "junk.db", node="N1")


def test_a_full_spool_drops_the_oldest_and_counts_them(tmp_path) -> None:
    with Spool(tmp_path / "s.db", node="N1", max_pending=3, first_seq=1) as spool:
        for i in range(5):
            spool.append(body(i))
        assert [h.seq for h in spool.pending(10)] == [3, 4, 5]
        assert spool.dropped == 2 and len(spool) == 3


def test_an_unreadable_row_does_not_block_the_rest(tmp_path) -> None:
    with Spool(tmp_path / "s.db", node="N1", first_seq=1) as spool:
        for i in range(3):
            spool.append(body(i))
        spool._db.execute("UPDATE pending SET body = '{broken' WHERE seq = 2")
        assert [h.seq for h in spool.pending(10)] == [1, 3]


CHILD = """
import sys
from datetime import UTC, datetime
from computelease.agent.spool import Spool
from computelease.telemetry.schemas import HeartbeatBody
spool = Spool(sys.argv[1], node="N1", first_seq=1)
while True:
    hb = spool.append(HeartbeatBody(at=datetime.now(UTC), interval_s=1))
    print(hb.seq, flush=True)  # printed only after the commit returned
"""


def test_committed_heartbeats_survive_kill_9(tmp_path) -> None:
    path = tmp_path / "spool.db"
    child = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    assert child.stdout is not None
    reported = [int(child.stdout.readline()) for _ in range(25)]
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    deadline = time.monotonic() + 5
    while True:  # the kernel releases the dead process's lock as it reaps it
        try:
            spool = Spool(path, node="N1")
            break
        except SpoolError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    with spool:
        kept = [h.seq for h in spool.pending(100_000)]
        assert set(reported) <= set(kept)
        assert kept == list(range(1, len(kept) + 1))  # in order, no holes
        assert spool.next_seq == kept[-1] + 1
