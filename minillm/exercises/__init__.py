"""Classroom exercises graded by gradient checks: re-derive a lesson function, then prove it.

    catalog.py      the exercises in course order (EXERCISES), statements.py their statements
    workspace.py    start (starters + README.md) and solve (the reference solutions)
    grader.py       check: one process per file, time and memory limits, table and Gradescope JSON
    runner.py       the process that grades one file; harness.py and diagnosis.py its tools
    grade_*.py      the tests of each exercise

From Python: ``start("w")``, ``check("w")`` (result dicts; ``format_table`` prints them), ``solve("w")``.
"""
from .catalog import EXERCISES, select
from .grader import check, format_table, gradescope
from .runner import grade_exercise
from .workspace import solve, start

__all__ = ["EXERCISES", "select", "start", "solve", "check", "format_table", "gradescope", "grade_exercise"]
