"""``python -m minillm.cli ...`` runs the ``minillm`` command."""
import sys

from .main import main

sys.exit(main())
