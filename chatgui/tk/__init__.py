"""The Tk widgets: the window, the chat pane, the connect form, theme, the pump from threads into Tk."""
