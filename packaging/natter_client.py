"""PyInstaller entry script of the Natter client (PyInstaller wants a script file)."""
import sys

from chatgui.main import main

if __name__ == "__main__":
    sys.exit(main())
