"""Natter desktop client: a Tkinter chat window, and a terminal mode.

Layers (each module states its thread):
- :mod:`chatgui.net.client`: the network client. Its threads read and write the
  socket and put events on a ``queue.Queue``; it never touches Tk. Under
  it, :mod:`chatgui.net.transport` (plain TCP or TLS) and :mod:`chatgui.net.pins`
  (certificate fingerprints, pinned once the person has compared them).
- :mod:`chatgui.net.events`: the events it puts there (the contract).
- :mod:`chatgui.app.commands`: ``/nick``, ``/msg``... parsed without I/O.
- :mod:`chatgui.app.controller`: UI decisions, testable without Tk.
- the Tk widgets, which only build and forward.
- :mod:`chatgui.cli`: the same network layer and commands in a terminal.
"""
