"""`python -m infra up|down|status|provision|migrate` (the same as `paycenter infra ...`)."""
import sys

from infra.cli import main

sys.exit(main())
