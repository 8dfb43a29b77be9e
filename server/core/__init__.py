"""The chat core: room state and the chat rules, with no socket in sight.

:mod:`.chat` handles the events the doors post, with :mod:`.rooms` (the
room frames), :mod:`.catchup` (welcomes and catch-up), :mod:`.identity`
(nick bindings, admins), :mod:`.moderation` (roles, mod, mode, who may
speak) and :mod:`.redaction` (questions, delete, edit, audit); :mod:`.fanout`
queues a pass's frames for the clients; :mod:`.frames` turns stored events
into frames; :mod:`.feed` delivers the events of a shared store's log
(several servers, ``--redis``).
"""
