"""The IRC door (issue 13), sans-I/O: bytes from an IRC client -> lines ->
the core's events, and the core's frames -> IRC lines, with no sockets or
threads, so all of it is tested without a network.

- :mod:`.wire`: parsing, serialising, tags, the 512-byte rules, reassembly
- :mod:`.caps`: ``CAP`` negotiation and SASL PLAIN
- :mod:`.registration`: ``NICK``/``USER``/``PASS`` until the core's hello
- :mod:`.names`: nicks, ``#room`` channels, ``msgid`` and ``time`` tags
- :mod:`.content`: message text both ways (splitting, CTCP ACTION, colours)
- :mod:`.isupport`: 004 and the 005 tokens, from one :class:`~.isupport.Features`
- :mod:`.chathistory`: ``CHATHISTORY`` arguments
- :mod:`.outbound`, :mod:`.errors`: the core's frames -> IRC lines
- :mod:`.view`: what one client's door knows of its rooms, from the frames
- :mod:`.numerics`: the numeric replies by name

With I/O and the hub:

- :mod:`.listener`: the client's reader thread (lines, PASS, flood control)
- :mod:`.session`: its hub-thread half (registration, commands as core
  events, and the connection's encoder)

docs/irc.md says what is served.
"""
