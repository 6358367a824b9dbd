"""``python -m clipcore.cli``: the ``clipcore`` command."""

import sys

from . import main

sys.exit(main())
