"""Natter chat server: a threaded broadcast room speaking JSON lines.

``python -m server --help`` lists the options; :class:`server.app.ChatServer`
runs it in-process (the desktop client's "Host a room" uses that).
The wire protocol shared with the client is :mod:`server.protocol`.
"""
