"""bench/scaleout.py in a tiny configuration, so it does not rot: two nodes
on one real redis-server and the SQLite default, 20 clients, a few messages;
every message delivered everywhere, a count, a p99, and nothing it started
left running."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.redistools import ROOT


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes whose arguments or environment name text."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    cmd = f.read()
                with open(f"/proc/{d}/environ", "rb") as f:
                    env = f.read()
            except OSError:
                continue
            if text.encode() in cmd or text.encode() in env:
                out.append(cmd.replace(b"\0", b" ").decode(errors="replace"))
    return out


@pytest.mark.timeout(120)
def test_the_scaleout_benchmark_runs_and_reports_sane_numbers(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (scripts/test.sh installs it)")
    pytest.importorskip("redis", reason="the redis extra is not installed (pip install -e '.[redis]')")
    out = tmp_path / "rows.json"
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "scaleout.py"), "--configs", "sqlite,redis2",
         "--clients", "20", "--senders", "2", "--rate", "20", "--secs", "1", "--timeout", "20",
         "--workers", "1", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=110,
        env=dict(os.environ, TMPDIR=str(tmp_path)))   # its Redis and nodes live under tmp_path
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(out.read_text())
    assert [r["config"] for r in rows] == ["sqlite", "redis2"]
    for r in rows:
        assert "error" not in r, r
        assert r["ok_clients"] == 20 and r["sent"] == 20
        assert r["delivered"] == r["expected"] == 20 * 20 and r["lost"] == 0
        assert r["deliveries_per_s"] > 0 and r["messages_per_s"] > 0
        assert 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"] < 20_000
    assert rows[1]["nodes"] == 2 and rows[1]["redis_cpu_s"] >= 0
    assert "| redis2 | 2 | 20/20 | 20 | 400/400 |" in proc.stdout
    assert not _processes_mentioning(str(tmp_path)), "the benchmark left a process behind"


@pytest.mark.timeout(60)
def test_the_scaleout_benchmark_refuses_an_unknown_configuration():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "scaleout.py"), "--configs", "redis0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=50)
    assert proc.returncode == 2 and "unknown configuration" in proc.stderr
