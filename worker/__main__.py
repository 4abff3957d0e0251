"""``python -m worker`` is the ``raqib`` command."""

import sys

from worker.cli import main

sys.exit(main())
