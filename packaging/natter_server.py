"""PyInstaller entry script of the Natter server (PyInstaller wants a script file)."""
import sys

from server.main import main

if __name__ == "__main__":
    sys.exit(main())
