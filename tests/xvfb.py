"""Start and stop a virtual X display (Xvfb) for tests, the screenshot
script and the GUI benchmark.

``Xvfb -displayfd`` picks a free display number itself and writes it to a
pipe we pass, so two runs at once cannot race for the same lock file.
:func:`stop` terminates and waits, so no stale ``/tmp/.X<n>-lock`` stays.
"""
from __future__ import annotations

import os
import select
import shutil
import subprocess
import time


def start(size: str = "1280x800x24", timeout: float = 15.0) -> tuple[subprocess.Popen, str]:
    """Start Xvfb; returns (process, ':N'). Raises RuntimeError on failure."""
    xvfb = shutil.which("Xvfb")
    if not xvfb:
        raise RuntimeError("Xvfb is not installed: apt-get install xvfb (scripts/test.sh does it)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen([xvfb, "-displayfd", str(write_fd), "-screen", "0", size, "-nolisten", "tcp",
                             "-noreset"], pass_fds=(write_fd,), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        number = b""
        deadline = time.monotonic() + timeout
        while not number.endswith(b"\n"):
            ready, _, _ = select.select([read_fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise RuntimeError(f"Xvfb did not report a display within {timeout:g} s")
            chunk = os.read(read_fd, 64)
            if not chunk:
                raise RuntimeError(f"Xvfb exited with {proc.wait(5)} before reporting a display")
            number += chunk
    except BaseException:
        stop(proc)
        raise
    finally:
        os.close(read_fd)
    return proc, f":{int(number)}"


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
