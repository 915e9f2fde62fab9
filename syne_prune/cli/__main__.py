"""python -m syne_prune.cli: the same as the syne-prune command."""
import sys

from syne_prune.cli import main

sys.exit(main())
