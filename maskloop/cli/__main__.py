"""``python -m maskloop.cli``: the ``maskloop`` command (the tests run it so, in a fresh process)."""

import sys

from maskloop.cli import main

sys.exit(main())
