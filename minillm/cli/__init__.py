"""The ``minillm`` command line.

    main.py      the argument parser and the error boundary (``main``)
    commands.py  what each subcommand does
    plots.py     attention-map figures
"""
from .main import main

__all__ = ["main"]
