"""A plugin that calls sys.exit while being imported: it must not end the whole run."""

import sys

sys.exit(3)
