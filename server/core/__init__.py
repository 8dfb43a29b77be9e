"""The chat core: room state and the chat rules, with no socket in sight.

:mod:`.chat` handles the events the doors post; :mod:`.room` queues a
pass's frames for a room's members.
"""
