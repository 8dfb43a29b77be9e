"""bench/fanout.py --probe in its quick configuration, so the server-side
latency probe (bench/probe) does not rot: it counts every say the server
handled and its share of the latency is below the end-to-end latency."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.timeout(150)
def test_the_fanout_benchmark_probe_counts_every_say_and_its_share_of_the_latency(tmp_path):
    out = tmp_path / "rows.json"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "fanout.py"), "--quick", "--probe",
                           "--workers", "1", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=140,
                          env=dict(os.environ, TMPDIR=str(tmp_path)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(out.read_text())
    assert [r["scenario"] for r in rows] == ["quick-burst", "quick-rate"]
    for r in rows:
        assert "error" not in r and r["lost"] == 0, r
        assert r["server_says"] == r["sent"] > 0, r     # every say, once
        assert 0 < r["server_p50_ms"] <= r["server_p99_ms"], r
        # The server's share is part of what the generator measured (its
        # clock starts before the send, the probe's after the recv).
        assert r["server_p50_ms"] <= r["p50_ms"] + 1, r
    assert "| quick-rate | 200 |" in proc.stdout.replace(",", ""), proc.stdout
