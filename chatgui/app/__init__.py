"""The application without Tk: the controller, commands, formatting, settings, hosting, the view contract."""
