"""The input box's memory: Up/Down recall and Tab nick completion, as
plain objects (no Tk), used by :class:`chatgui.app.controller.Controller`.

Thread: whoever owns the controller (the Tk thread).
"""
from __future__ import annotations

import re

from chatgui.app import formatting

_WORD_END = re.compile(r"@?[\w-]*$")


class InputHistory:
    """What was sent, for Up and Down. Down past the newest entry gives
    back what was being typed before Up was first pressed."""

    def __init__(self, limit: int = 200):
        self.limit = limit
        self.entries: list[str] = []
        self._index: int | None = None      # the entry shown, while recalling
        self._draft = ""

    def add(self, text: str) -> None:
        self._index = None
        self._draft = ""
        if not self.entries or self.entries[-1] != text:
            self.entries.append(text)
            del self.entries[:-self.limit]

    def step(self, step: int, current: str) -> str | None:
        """Up (-1) or Down (+1) from ``current``: the text to show, or None
        when nothing changes."""
        if not self.entries:
            return None
        if self._index is None:
            if step > 0:
                return None
            self._draft = current
            index = len(self.entries) - 1
        else:
            index = max(0, self._index + step)
        if index >= len(self.entries):
            self._index = None
            return self._draft
        self._index = index
        return self.entries[index]


class NickCompleter:
    """Tab completes the nick before the cursor; Tab again, with the text
    unchanged, offers the next nick that fits. At the start of the line a
    nick gets ": " (addressing someone), elsewhere a space."""

    def __init__(self):
        self._last: tuple | None = None      # (text shown, start, names, index, tail)

    def reset(self) -> None:
        self._last = None

    def complete(self, text: str, cursor: int, nicks) -> tuple[str, int] | None:
        """(new text, new cursor), or None when no nick fits."""
        last = self._last
        if last is not None and last[0] == text:
            _shown, start, names, index, tail = last
            index = (index + 1) % len(names)
        else:
            head = text[:cursor]
            start = len(head) - len(_WORD_END.search(head).group())
            names = formatting.complete(head[start:], nicks)
            if not names:
                self._last = None
                return None
            index, tail = 0, text[cursor:]
        nick = names[index]
        suffix = ": " if start == 0 else " "
        if tail.startswith(" "):
            suffix = suffix.rstrip()
        new_text = text[:start] + nick + suffix + tail
        self._last = (new_text, start, names, index, tail)
        return new_text, start + len(nick) + len(suffix)
