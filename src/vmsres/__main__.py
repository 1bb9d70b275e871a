import sys

from vmsres.cli import main

sys.exit(main())
