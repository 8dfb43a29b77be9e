"""Field rules: nicks, room names, message text and topics."""
from __future__ import annotations

import bisect
import functools
import unicodedata

from .errors import BAD_FRAME, BAD_NICK, BAD_ROOM, BAD_TEXT, ProtocolError

LOBBY = "lobby"               # the room that always exists
MAX_NICK = 32
MAX_ROOM = 32
MAX_TOPIC = 300

# Characters a message text may not carry: C0 and C1 controls other than tab
# and newline, and DEL. They can rewrite a terminal or fake a line break.
_ALLOWED_CONTROLS = {"\t", "\n"}


def check_nick(nick) -> str:
    """Return the nick in NFC form, or raise ProtocolError(bad_nick).

    1 to 32 characters: letters of any script, combining marks after the
    first character, digits, ``_`` and ``-``, and none of Unicode's
    default-ignorable code points (variation selectors, joiners, Hangul
    fillers...), which draw nothing. The letters come from one
    script, or Latin with Chinese, Japanese or Korean (Unicode TR39's
    "highly restrictive" level), so a Cyrillic 'а' cannot pose as a Latin
    'a' inside a nick.
    """
    if type(nick) is not str:
        raise ProtocolError(BAD_NICK, "nick must be a string")
    nick = unicodedata.normalize("NFC", nick)
    if not nick:
        raise ProtocolError(BAD_NICK, "nick is empty")
    if len(nick) > MAX_NICK:
        raise ProtocolError(BAD_NICK, f"nick is longer than {MAX_NICK} characters")
    for i, ch in enumerate(nick):
        if is_default_ignorable(ch):
            raise ProtocolError(BAD_NICK, f"nick may not hold {_describe(ch)}: it is invisible, so the nick "
                                          "would look like another one")
        cat = unicodedata.category(ch)
        if ch in "_-" or cat in ("Lu", "Ll", "Lt", "Lm", "Lo", "Nd"):
            continue
        if cat in ("Mn", "Mc") and i > 0:
            continue
        shown = ch if ch.isprintable() and not ch.isspace() else f"U+{ord(ch):04X}"
        raise ProtocolError(BAD_NICK, f"nick may hold letters, digits, '_' and '-' only, not {shown!r}")
    scripts = {_script(ch) for ch in nick if unicodedata.category(ch)[0] == "L"} - {None}
    if len(scripts) > 1:
        others = scripts - _CJK
        if not (scripts & _CJK and others <= {"LATIN"}):
            names = " and ".join(sorted(w.title() for w in scripts))
            raise ProtocolError(BAD_NICK, f"nick mixes {names} letters, which can imitate another nick; "
                                          "use one alphabet")
    return nick


_CJK = frozenset({"HAN", "HIRAGANA", "KATAKANA", "HANGUL", "BOPOMOFO"})

# Default_Ignorable_Code_Point (Unicode DerivedCoreProperties.txt, 15.1),
# inclusive ranges. It holds the four Hangul fillers (U+115F, U+1160,
# U+3164, U+FFA0), which are letters (Lo) that draw as blank space.
_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)
_IGNORABLE_STARTS = tuple(lo for lo, _ in _IGNORABLE)


def is_default_ignorable(ch: str) -> bool:
    """True for a Default_Ignorable_Code_Point: a character that renders as
    nothing when a font has no glyph for it."""
    cp = ord(ch)
    i = bisect.bisect_right(_IGNORABLE_STARTS, cp) - 1
    return i >= 0 and cp <= _IGNORABLE[i][1]


def _describe(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X} ({name})" if name else f"U+{ord(ch):04X}"


def _script(ch: str) -> str | None:
    """The script of a letter (None: a letter of no script), from its Unicode name (after NFKC, so
    fullwidth and mathematical forms count as the letter they imitate)."""
    base = unicodedata.normalize("NFKC", ch)[:1] or ch
    try:
        word = unicodedata.name(base).split(" ", 1)[0]
    except ValueError:
        return "UNKNOWN"
    if word in ("CJK", "IDEOGRAPHIC", "MASU"):   # 々 and 〆 are in everyday Japanese names (佐々木)
        return "HAN"
    if word in ("MODIFIER", "COMBINING", "SPACE"):
        return None   # script-neutral (Unicode's Common/Inherited): the ʻokina of Hawaiʻi, halfwidth ﾞ
    if word.startswith("KATAKANA") or word.startswith("HIRAGANA"):
        return word.split("-", 1)[0]
    return word


def check_room(room) -> str:
    """Return a room name in NFC form, or raise ProtocolError(bad_room).

    The same characters and one-script rule as nicks (:func:`check_nick`),
    1 to 32 characters, with no leading '#' (the window shows one; the wire
    carries the bare name).
    """
    if type(room) is not str:
        raise ProtocolError(BAD_ROOM, "'room' must be a room name (a string)")
    if room.startswith("#"):
        raise ProtocolError(BAD_ROOM, f"room names are sent without the '#': use {room.lstrip('#')[:40]!r}")
    try:
        return check_nick(room)
    except ProtocolError as e:
        raise ProtocolError(BAD_ROOM, e.message.replace("nick", "room name", 1)) from None


def room_key(room: str) -> str:
    """The identity of a room name: names with equal keys are one room (as :func:`nick_key`)."""
    return nick_key(room)


@functools.lru_cache(maxsize=4096)
def nick_key(nick: str) -> str:
    """The identity of a nick: nicks with equal keys collide.

    NFKC folds look-alike compatibility forms (fullwidth letters, ligatures,
    superscripts) and casefold folds case, so 'Ｂｏｂ', 'BOB' and 'bob' are
    one nick. Cached (bounded): the hub keys every say's room with it.
    """
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", nick).casefold())


def check_text(text, field: str = "text") -> str:
    """Return text if it is a non-blank string with no forbidden controls."""
    if type(text) is not str:
        raise ProtocolError(BAD_FRAME, f"'{field}' must be a string")
    if not text.strip():
        raise ProtocolError(BAD_TEXT, f"'{field}' is empty")
    if not text.isprintable():
        for ch in text:
            if ch.isprintable() or ch in _ALLOWED_CONTROLS or ch == " ":
                continue
            cat = unicodedata.category(ch)
            if cat == "Cs":
                raise ProtocolError(BAD_TEXT, f"'{field}' holds a lone surrogate; it is not valid Unicode")
            if cat == "Cc":
                raise ProtocolError(BAD_TEXT, f"'{field}' holds control character U+{ord(ch):04X}; "
                                              "only tab and newline are allowed")
            # Other non-printables (format characters, separators, private
            # use, unassigned) are text: the client shows them safely.
    return text



def check_topic(topic) -> str:
    """A topic: a string of at most MAX_TOPIC characters, one line, no
    control characters; "" clears the topic."""
    if type(topic) is not str:
        raise ProtocolError(BAD_FRAME, "'topic' must be a string")
    if len(topic) > MAX_TOPIC:
        raise ProtocolError(BAD_TEXT, f"a topic is at most {MAX_TOPIC} characters")
    if "\n" in topic or "\t" in topic:
        raise ProtocolError(BAD_TEXT, "a topic is one line: no newline or tab")
    if topic.strip():
        check_text(topic, "topic")
    return topic.strip()


def is_unicode(s: str) -> bool:
    """False for a str holding a lone surrogate (JSON "\\ud800" gives one):
    it cannot be encoded to UTF-8, so it cannot be hashed or compared."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
