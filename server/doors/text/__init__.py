"""The plain-text door (issue 13), sans-I/O: for nc, telnet and the
classic tutorial's client. :mod:`.inbound` turns bytes into what the
person typed (telnet stripped, lines, the pause rule, commands);
:mod:`.outbound` turns the core's frames into ``HH:MM <nick> text``
lines. :mod:`.listener` is the client's reader thread and
:mod:`.session` its hub-thread half."""
