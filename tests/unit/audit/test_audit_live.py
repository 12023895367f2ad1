"""An analyst queries the audit log while the gateway keeps writing it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from tests.unit.audit.audit_helpers import REPO, count, exchange
from tollhouse.audit import store
from tollhouse.audit.writer import AuditWriter

READER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from tollhouse.audit.query import run_query
    data, seconds = Path(sys.argv[1]), float(sys.argv[2])
    results, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.monotonic()
        try:
            _, rows = run_query(data, "SELECT count(*) FROM exchanges", wait=5.0)
            results.append({"ok": True, "ms": (time.monotonic() - t) * 1000, "n": rows[0][0]})
        except Exception as exc:
            results.append({"ok": False, "error": repr(exc)})
        time.sleep(0.02)
    print(json.dumps(results))
    """
)


def test_queries_succeed_while_the_writer_runs_and_no_row_is_lost(tmp_path: Path) -> None:
    writer = AuditWriter(tmp_path, batch_size=500, flush_interval=0.1, spool_retry=0.2)
    writer.start()
    writer.submit("exchanges", exchange(id="seed"))  # the reader needs the file to exist
    assert writer.flush(5)

    submitted = ["seed"]
    stop = threading.Event()

    def gateway() -> None:  # ~2 s of steady traffic
        i = 0
        while not stop.is_set():
            for _ in range(20):
                row_id = f"live-{i}"
                writer.submit("exchanges", exchange(id=row_id))
                submitted.append(row_id)
                i += 1
            time.sleep(0.01)

    traffic = threading.Thread(target=gateway)
    traffic.start()
    reader = subprocess.run(
        [sys.executable, "-c", READER, str(tmp_path), "2.0"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    stop.set()
    traffic.join()
    writer.close()

    assert reader.returncode == 0, reader.stderr
    results = json.loads(reader.stdout)
    failures = [r for r in results if not r["ok"]]
    assert not failures, failures[:3]
    assert len(results) >= 5  # the reader got in many times, not once
    counts = [r["n"] for r in results]
    assert counts == sorted(counts) and counts[-1] > 1  # it saw the log grow

    db = tmp_path / store.DB_NAME
    assert count(db) == (len(submitted), len(submitted))
    got = count(db, "SELECT list(id) FROM exchanges")[0]
    assert set(got) == set(submitted)
    assert writer.stats.spool_pending == 0
