"""python3 -m tgstack_gateway: the command line."""

import sys

from tgstack_gateway.cli import main

sys.exit(main())
