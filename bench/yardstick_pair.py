#!/usr/bin/env python3
"""The independent yardstick on two trees of this project, interleaved:
for each scenario, ../shared/bench/compare.py --only project on BASE then
on NEW, so both meet the same machine. Prints one JSON row per run.

    git archive 03f303c | (mkdir -p /tmp/base && tar -x -C /tmp/base)
    python3 bench/yardstick_pair.py /tmp/base . burst100,rate1000,idle2000,idle5000 [ROUNDS]
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
COMPARE = os.path.join(HERE, "..", "..", "shared", "bench", "compare.py")


def main() -> int:
    base, new, scenarios = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    for r in range(rounds):
        for sc in scenarios:
            for name, path in (("base", base), ("new", new)):
                with tempfile.NamedTemporaryFile(suffix=".json") as out:
                    subprocess.run([sys.executable, COMPARE, "--project", os.path.abspath(path), "--only", "project",
                                    "--scenarios", sc, "--json", out.name],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    row = json.load(open(out.name))[0]
                keep = ("scenario", "ok_clients", "delivered", "expected", "deliveries_per_s", "p50_ms", "p99_ms",
                        "peak_rss_mib", "rss_kib_per_client", "error")
                print(json.dumps({"which": name, "round": r, **{k: row.get(k) for k in keep}}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
