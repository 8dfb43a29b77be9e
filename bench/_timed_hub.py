"""``python bench/_timed_hub.py OUT.json SERVER-ARGS...``: the server, with the
time of each hub pass's write (Hub._write_pass: seal, queue, write) kept
and saved to OUT.json when it stops (SIGTERM). Used by bench/idle_profile.py."""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.getcwd())     # the tree bench/idle_profile.py runs it in

from server import hub  # noqa: E402
from server.main import main  # noqa: E402

out, times = sys.argv[1], []
write_pass = hub.Hub._write_pass


def timed(self):
    t = time.perf_counter()
    write_pass(self)
    times.append(time.perf_counter() - t)


hub.Hub._write_pass = timed
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
sys.argv = ["server"] + sys.argv[2:]
try:
    main()
finally:
    with open(out, "w") as f:
        json.dump(times, f)
