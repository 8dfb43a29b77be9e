"""The words of moderation (issue 11), shared by the window's controller
(:mod:`chatgui.app.moderation`) and the terminal (:mod:`chatgui.cli`):
the line each ``moderated`` and ``mode`` event shows, a sentence for every
refusal a person can act on ("You are muted in #maths for 4 more
minutes."), the audit trail's entries, how long is left of a mute.

``label`` is a room as shown ("#maths"), already made safe by the caller;
``safe`` is the caller's function that makes peer text safe for its
screen (Tk or a terminal).

Thread: pure functions, any thread.
"""
from __future__ import annotations

import math

from server import protocol as p

from chatgui.app.view import Modes
from chatgui.net import moderation as mod

EDIT_WINDOW = 600           # seconds: the server's default --edit-window

# What a mod action does, for sentences: "You cannot kick bob", "alice kicked bob".
_DOING = {"kick": "remove {n} from {r}", "ban": "ban {n} from {r}", "unban": "lift the ban on {n} in {r}",
          "mute": "mute {n} in {r}", "unmute": "unmute {n} in {r}", "op": "make {n} an op of {r}",
          "deop": "take op from {n} in {r}", "voice": "give {n} voice in {r}",
          "devoice": "take voice from {n} in {r}"}


def audit_words(x: mod.AuditEntry, safe) -> str:
    """One entry of the audit trail: "teacher mute bob: noise"."""
    who = safe(x.by) if x.by else "(expired)"
    why = f": {safe(x.reason)}" if x.reason else ""
    if x.action == "mode":
        what = ", ".join(f"{safe(k)} {safe(str(v).lower() if type(v) is bool else v)}" for k, v in x.modes)
        return f"{who} set the modes {what or '(none)'}{why}"
    if x.action == "delete":
        return f"{who} removed a message of {safe(x.nick) or 'someone'}{why}"
    return f"{who} {safe(x.action)} {safe(x.nick)}{why}"


def vars_of(modes: Modes) -> dict:
    return {name: getattr(modes, name) for name in mod.MODE_DEFAULTS}


def span(seconds: float, more: bool = False) -> str:
    """'5 minutes' (``more``: '4 more minutes'): seconds under 90, minutes
    (rounded up) under an hour, then hours and days (rounded)."""
    s = max(1, math.ceil(seconds))
    if s < 90:
        n, unit = s, "second"
    elif s < 3600:
        n, unit = math.ceil(s / 60), "minute"
    elif s < 86_400:
        n, unit = max(1, round(s / 3600)), "hour"
    else:
        n, unit = max(1, round(s / 86_400)), "day"
    return f"{n} {'more ' if more else ''}{unit}{'s' if n != 1 else ''}"


def more_time(seconds: float) -> str:
    """What is left of a mute or ban: '4 more minutes'."""
    return span(seconds, more=True)


def _plural(n, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def describe_modes(m: Modes) -> str:
    parts = [name for name, on in (("moderated", m.moderated), ("questions", m.questions),
                                    ("announce", m.announce)) if on]
    if m.slow:
        parts.append(f"slow {m.slow} s")
    if not m.dm:
        parts.append("no private messages between members")
    if m.key:
        parts.append("key")
    return ", ".join(parts) or "none (everyone may speak)"


def _mode_words(name: str, value, label: str) -> str:
    if name == "moderated":
        return (f"made {label} moderated: only ops and people with voice can speak." if value
                else f"ended moderation: everyone can speak in {label}.")
    if name == "questions":
        return (f"turned on questions in {label}: members' messages go to the ops first, who release them."
                if value else f"turned questions off in {label}: messages go to everyone again.")
    if name == "announce":
        return (f"made {label} announcements only: only ops can speak." if value
                else f"ended announcements only: everyone can speak in {label}.")
    if name == "slow":
        return (f"turned on slow mode in {label}: one message every {_plural(value, 'second')} per member."
                if value else f"turned slow mode off in {label}.")
    if name == "dm":
        return (f"allowed private messages between members of {label} again." if value
                else f"switched off private messages between members of {label}.")
    return (f"set a key for {label}: newcomers need it to join." if value
            else f"removed the key of {label}: anyone may join.")


def speak_refusal(code: str, message: str, label: str, until, retry_after, now: float, modes: Modes,
                  dm: bool = False, to: str | None = None) -> str | None:
    """A say (or, ``dm``, a private message to ``to``) refused by the room's
    rules -> a sentence; None for a code that is not about moderation."""
    if code == mod.MUTED:
        return f"You are muted in {label} {how_long(until, now, 'until an op unmutes you')}."
    if code == mod.SLOW_MODE:
        wait = math.ceil(retry_after) if retry_after is not None else None
        return (f"Slow mode in {label}: you can send again in {_plural(wait, 'second')}." if wait
                else f"Slow mode in {label}: wait a little before sending again.")
    if code == mod.BANNED:
        return f"You are banned from {label} {how_long(until, now, 'until an op lifts the ban')}."
    if code == mod.FORBIDDEN:
        if dm:
            return (f"{to or 'They'} cannot get private messages from you now: private messages between "
                    f"members are switched off in a room you share ({_lower(message).rstrip('.')}).")
        if modes.announce:
            return f"Only the ops can speak in {label}: it is for announcements."
        if modes.moderated:
            return (f"Only ops and people with voice can speak in {label} now (it is moderated): "
                    "ask an op for voice.")
        return f"You may not speak in {label}: {_lower(message).rstrip('.') or 'the room does not allow it'}."
    return None


def how_long(until, now: float, otherwise: str) -> str:
    return otherwise if until is None else f"for {more_time(until - now)}"


def moderated_sentence(e: mod.Moderated, label: str, ours: bool, safe, now: float) -> str:
    """The line a ``moderated`` event shows in its room."""
    who = "you" if ours else safe(e.nick)
    by = safe(e.by) if e.by else None
    why = f": {safe(e.reason)}" if e.reason and e.reason != "expired" else "."
    span_ = f" for {span(e.until - (e.ts or now))}" if e.until is not None else ""
    if e.action == "kick":
        return f"{by or 'An op'} removed {who} from {label}{why}"
    if e.action == "ban":
        return f"{by or 'An op'} banned {who} from {label}{span_ or ' until the ban is lifted'}{why}"
    if e.action == "mute":
        tail = " You can read, but not speak." if ours else ""
        return f"{by or 'An op'} muted {who} in {label}{span_}{why}{tail}"
    if e.action == "unban":
        return f"{by} lifted the ban on {who}." if by else f"The ban on {who} in {label} has expired."
    if e.action == "unmute":
        if by is None:
            return (f"You can speak in {label} again (the mute has expired)." if ours
                    else f"{who} can speak in {label} again (the mute has expired).")
        return f"{by} unmuted {who}" + (": you can speak again." if ours else ".")
    words = {"op": f"made {who} an op of {label}", "deop": f"took op from {who}",
             "voice": f"gave {who} voice in {label}", "devoice": f"took voice from {who}"}[e.action]
    return f"{by or 'Someone'} {words}."


def mode_sentence(by: str | None, name: str, value, label: str) -> str:
    """The line one changed mode shows ("alice made #maths moderated: ...")."""
    return f"{by or 'Someone'} {_mode_words(name, value, label)}"


def request_refusal(kind: str, detail, code: str, message: str, label: str, safe) -> str:
    """A refused moderation request (``kind`` one of :data:`MOD_KINDS`;
    ``detail``: (action, nick) for mod, the id for delete/edit/release)."""
    why = _lower(safe(message)).rstrip(".")
    if code in (p.UNKNOWN_TYPE, "no_rooms"):
        return "This server does not know moderation (it runs an older version of Natter)."
    if code == p.RATE_LIMITED:
        return f"Too much at once: the server asks you to slow down ({why})."
    if kind == "mod":
        action, nick = detail
        doing = _DOING[action].format(n=safe(nick), r=label)
        if code == p.NOT_IN_ROOM:
            return f"{safe(nick)} is not in {label}."
        if code == mod.NO_IDENTITY:
            return (f"{safe(nick)} cannot get a role: their app sends no identity (an older version?), "
                    "so the role could not stay with them.")
        if code == mod.FORBIDDEN:
            default = ("only the owner can" if action in ("op", "deop")
                       else "only ops can, and not on an equal or higher rank")
            return f"You cannot {doing}: {why or default}."
        return f"Could not {doing}: {why}."
    sentences = _REFUSALS.get(kind)
    if sentences is not None:
        text = sentences.get(code, sentences[None])
        return text.format(label=label, detail=detail, why=why, minutes=EDIT_WINDOW // 60)
    return f"Your nick could not be released: {why}."


# kind -> error code -> sentence (None: any other code); fields: {label} the
# room, {detail} the message id, {why} the server's words, {minutes} the
# edit window.
_REFUSALS = {
    "mode": {mod.FORBIDDEN: "Only the ops of {label} can change its settings.",
             None: "The settings of {label} were not changed: {why}."},
    "delete": {mod.EDIT_WINDOW: ("Too late to remove that message: your own can be removed for {minutes} "
                                 "minutes after sending; an op can remove it."),
               mod.FORBIDDEN: "You can only remove your own messages (ops can remove anyone's).",
               mod.NO_SUCH_MESSAGE: "There is no message {detail} to remove (it may be gone already).",
               None: "The message was not removed: {why}."},
    "edit": {mod.EDIT_WINDOW: "Too late to edit that message: messages can be edited for {minutes} minutes "
                              "after sending.",
             mod.FORBIDDEN: "You can only edit your own messages.",
             mod.NO_SUCH_MESSAGE: "There is no message {detail} to edit (it may have been removed).",
             None: "The message was not changed: {why}."},
    "release": {mod.FORBIDDEN: "Only the ops of {label} can release questions.",
                mod.NO_SUCH_MESSAGE: "Question {detail} is not waiting any more.",
                None: "The question was not released: {why}."},
    "audit": {mod.FORBIDDEN: "Only the ops of {label} can read its moderation trail.",
              None: "The moderation trail of {label} is not available: {why}."},
}
