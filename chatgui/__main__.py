import sys
from chatgui.main import main
sys.exit(main())
