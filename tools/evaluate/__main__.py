"""``python -m tools.evaluate PATH``: the same as ``retroguard evaluate PATH``."""

import sys

from tools.evaluate.cli import main

sys.exit(main())
