"""Doors: how clients reach the hub. A door reads its wire format, posts the
core's events to the hub and owns no chat rule; :mod:`.jsonl` is the JSON-lines
door the window and the terminal client use."""
