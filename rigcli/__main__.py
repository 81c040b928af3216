import sys

from rigcli.main import main

sys.exit(main())
