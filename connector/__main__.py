"""`python -m connector` is the `connector` command."""

import sys

from connector.cli import main

sys.exit(main())
