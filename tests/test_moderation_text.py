"""The sentences a refused moderation request shows (chatgui.app.moderation_text):
each kind and code gets its own sentence, other codes the kind's fallback
with the server's words, and peer text in it stays escaped."""
from __future__ import annotations

import pytest

from chatgui.app.moderation_text import request_refusal
from chatgui.net import moderation as mod


def safe(text: str) -> str:
    return text.replace("\u202e", "\\u202e")


@pytest.mark.parametrize("kind, detail, code, expected", [
    ("mode", None, mod.FORBIDDEN, "Only the ops of #maths can change its settings."),
    ("mode", None, "whatever", "The settings of #maths were not changed: no such mode."),
    ("delete", 41, mod.EDIT_WINDOW, "Too late to remove that message: your own can be removed for 10 minutes "
                                    "after sending; an op can remove it."),
    ("delete", 41, mod.FORBIDDEN, "You can only remove your own messages (ops can remove anyone's)."),
    ("delete", 41, mod.NO_SUCH_MESSAGE, "There is no message 41 to remove (it may be gone already)."),
    ("delete", 41, "whatever", "The message was not removed: no such mode."),
    ("edit", 41, mod.EDIT_WINDOW, "Too late to edit that message: messages can be edited for 10 minutes after "
                                  "sending."),
    ("edit", 41, mod.FORBIDDEN, "You can only edit your own messages."),
    ("edit", 41, mod.NO_SUCH_MESSAGE, "There is no message 41 to edit (it may have been removed)."),
    ("edit", 41, "whatever", "The message was not changed: no such mode."),
    ("release", 7, mod.FORBIDDEN, "Only the ops of #maths can release questions."),
    ("release", 7, mod.NO_SUCH_MESSAGE, "Question 7 is not waiting any more."),
    ("release", 7, "whatever", "The question was not released: no such mode."),
    ("audit", None, mod.FORBIDDEN, "Only the ops of #maths can read its moderation trail."),
    ("audit", None, "whatever", "The moderation trail of #maths is not available: no such mode."),
])
@pytest.mark.timeout(10)
def test_each_refusal_has_its_sentence(kind, detail, code, expected):
    assert request_refusal(kind, detail, code, "No such mode.", "#maths", safe) == expected


@pytest.mark.timeout(10)
def test_the_servers_words_are_escaped_and_braces_are_kept():
    text = request_refusal("edit", 3, "whatever", "Bad {x} \u202e here.", "#{r}", safe)
    assert text == "The message was not changed: bad {x} \\u202e here."
    assert request_refusal("mode", None, mod.FORBIDDEN, "", "#{r}", safe) == \
        "Only the ops of #{r} can change its settings."
