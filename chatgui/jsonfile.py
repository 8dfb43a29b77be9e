"""The one atomic JSON write of the client: settings, pinned certificates
and session tokens all go through :func:`write_json`.

A crash mid-write never leaves half a file: the document goes to a
temporary file in the same folder (``mkstemp``: mode 0600, readable by this
user only), is flushed to disk, then replaces the old file in one rename.

Thread: any; file I/O only. The caller serialises writes to one path.
"""
from __future__ import annotations

import json
import os
import tempfile


def write_json(path: str, doc, *, indent: int | None = 1, sort_keys: bool = False) -> None:
    """Write ``doc`` as UTF-8 JSON to ``path`` atomically, mode 0600 on POSIX;
    creates the folder. Raises OSError (nothing is changed then)."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    name = os.path.basename(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=indent, sort_keys=sort_keys, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
