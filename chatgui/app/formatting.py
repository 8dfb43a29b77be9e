"""Pure display helpers both UIs use: time, safe text, mentions, links, completion.

Anything a peer sends goes through :func:`safe_text` (terminal) or
:func:`tk_safe` (window) before it is shown:

- control characters (C0 other than tab and newline, DEL, C1) are shown
  escaped as ``\\x1b``, so no escape sequence reaches a terminal and no
  carriage return rewrites a line;
- the bidi embedding/override/isolate characters U+202A-U+202E and
  U+2066-U+2069 are shown escaped (``\\u202e``), so a message cannot
  reorder the text after it or dress itself up as something else; so are
  the line and paragraph separators U+2028/U+2029 and lone surrogates;
- for Tk 8.6, characters outside the Basic Multilingual Plane are replaced
  (:func:`tk_safe`): Tk 8.6 cannot draw them and an X server can fail on
  colour-emoji fonts. Emoji the window draws as pictures
  (:mod:`chatgui.app.emoji`) are kept when asked for; other emoji become their
  name (``:grinning face:``), flags their letters (``[FR]``), styled
  letters their plain form.

Newlines are kept: a UI lays a multi-line message out under its sender so a
second line cannot pass for a line of its own.

Thread: pure functions, any thread.
"""
from __future__ import annotations

import re
import time
import unicodedata

from server import protocol

from chatgui.app import emoji as emoji_mod


def timestamp(ts: float | None = None) -> str:
    """Local time of a Unix timestamp (now when None) as HH:MM."""
    return time.strftime("%H:%M", time.localtime(ts))


def _escape(ch: str) -> str:
    o = ord(ch)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


_UNSAFE_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def safe_text(text: str) -> str:
    """Text from a peer made harmless to show (see the module docstring). Idempotent."""
    if type(text) is not str:
        text = str(text)
    return _UNSAFE_RE.sub(lambda m: _escape(m.group()), text)


def astral_supported(tk_version) -> bool:
    """Whether a Tk of this version (``tkinter.TkVersion`` or a patchlevel
    string like "8.6.13") shows characters outside the BMP: 8.7 and later."""
    m = re.match(r"\s*(\d+)\.(\d+)", str(tk_version))
    return m is not None and (int(m.group(1)), int(m.group(2))) >= (8, 7)


def _astral_stand_in(ch: str, nxt: str | None) -> tuple[str, int]:
    """(replacement, characters consumed) for an astral character."""
    o = ord(ch)
    if 0x1F1E6 <= o <= 0x1F1FF:           # regional indicators: a flag is a pair of them
        a = chr(o - 0x1F1E6 + ord("A"))
        if nxt is not None and 0x1F1E6 <= ord(nxt) <= 0x1F1FF:
            return f"[{a}{chr(ord(nxt) - 0x1F1E6 + ord('A'))}]", 2
        return f"[{a}]", 1
    if 0x1F3FB <= o <= 0x1F3FF or 0xE0000 <= o <= 0xE007F:   # skin tones, tag characters
        return "", 1
    folded = unicodedata.normalize("NFKC", ch)
    if folded != ch and all(ord(c) <= 0xFFFF for c in folded):
        return folded, 1                  # mathematical bold A -> A
    name = unicodedata.name(ch, "")
    if name and unicodedata.category(ch) == "So" and len(name) <= 40:
        return f":{name.lower()}:", 1
    return "\ufffd", 1


def tk_safe(text: str, astral_ok: bool = False, emoji: bool = False) -> str:
    """:func:`safe_text`, plus astral characters replaced unless ``astral_ok``
    (pass ``astral_supported(tkinter.TkVersion)``). With ``emoji``, the
    sequences :func:`chatgui.app.emoji.segments` has pictures for are kept as
    they are, for a view that draws them (see :mod:`chatgui.tk.emoji_text`).
    Idempotent."""
    text = safe_text(text)
    if astral_ok or text.isascii() or all(ord(c) <= 0xFFFF for c in text):
        return text
    if not emoji:
        return _stand_ins(text)
    return "".join(_stand_ins(seg) if type(seg) is str else seg.chars for seg in emoji_mod.segments(text))


def _stand_ins(text: str) -> str:
    """Each astral character of text replaced by its stand-in."""
    out = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ord(ch) <= 0xFFFF:
            out.append(ch)
            i += 1
            continue
        rep, used = _astral_stand_in(ch, text[i + 1] if i + 1 < n else None)
        out.append(rep)
        i += used
    return "".join(out)


# --------------------------------------------------------------------------
# Mentions

def _nick_pattern(nick: str) -> re.Pattern:
    # A nick is letters, digits, '_' and '-': a mention is the nick not
    # glued to more of those on either side.
    return re.compile(r"(?<![\w-])" + re.escape(nick) + r"(?![\w-])", re.IGNORECASE)


def mention_spans(text: str, nick: str) -> list:
    """(start, end) of each whole-word, case-insensitive mention of nick in text."""
    if not nick:
        return []
    return [m.span() for m in _nick_pattern(nick).finditer(text)]


def mentions(text: str, nick: str) -> bool:
    """Whether text mentions nick as a whole word, ignoring case and
    look-alike forms (the server's own nick identity: 'ＢＯＢ' is 'bob')."""
    if not nick:
        return False
    if mention_spans(text, nick):
        return True
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return _nick_pattern(protocol.nick_key(nick)).search(folded) is not None


# --------------------------------------------------------------------------
# Links

_URL_RE = re.compile(r"(?<![\w@/.])(?:https?://|www\.)[^\s<>\"'`\\]+", re.IGNORECASE)
_TRAILING = ".,;:!?'\"*"
_PAIRS = {")": "(", "]": "[", "}": "{"}


def find_urls(text: str) -> list:
    """Web links in text: [(start, end, url to open)], http and https only.

    Trailing punctuation and unmatched closing brackets are left out
    ("see https://x.org/a)." links https://x.org/a); "www." links open as
    http://.
    """
    out = []
    for m in _URL_RE.finditer(text):
        start, end = m.span()
        # Bracket counts of the match, taken once and kept up to date as
        # its end is trimmed: linear in the length of the match (counting
        # again for each stripped ')' made a run of them quadratic).
        closes = {c: text.count(c, start, end) for c in _PAIRS}
        opens = {c: text.count(o, start, end) for c, o in _PAIRS.items()}
        while end > start:
            last = text[end - 1]
            if last in _TRAILING:
                end -= 1
            elif last in _PAIRS and opens[last] < closes[last]:
                closes[last] -= 1
                end -= 1
            else:
                break
        url = text[start:end]
        low = url.lower()
        if low in ("www.", "http://", "https://") or low.endswith("://"):
            continue
        if low.startswith("www."):
            url = "http://" + url
        out.append((start, end, url))
    return out


# --------------------------------------------------------------------------
# Nick completion

def complete(prefix: str, nicks) -> list:
    """Nicks starting with prefix (case-insensitive; a leading '@' is ignored),
    sorted case-insensitively. An empty prefix matches everyone."""
    p = prefix.lstrip("@").casefold()
    return sorted((n for n in set(nicks) if n.casefold().startswith(p)), key=lambda n: (n.casefold(), n))


def common_prefix(names) -> str:
    """The longest start all names share, compared case-insensitively;
    spelled as in the first name."""
    names = list(names)
    if not names:
        return ""
    first = names[0]
    end = len(first)
    for n in names[1:]:
        i = 0
        while i < end and i < len(n) and n[i].casefold() == first[i].casefold():
            i += 1
        end = i
    return first[:end]
