"""``minillm exercises list | start | check | solve``: the classroom exercises from the command line.

    minillm exercises list                       # the exercises in course order
    minillm exercises start w                    # a workspace of starters and a README.md
    minillm exercises check w [--json r.json]    # grade it (exit 0 only when everything passes)
    minillm exercises solve w                    # the reference solutions (for teachers)
"""
from .. import exercises


def add_parser(sub, formatter):
    """The ``exercises`` subcommand and its four actions."""
    e = sub.add_parser("exercises", formatter_class=formatter, help="classroom exercises graded by gradient checks",
                       description="Re-derive the library's functions (backward passes, attention, an optimizer step, "
                                   "a BPE merge, sampling, a KV cache) and have them graded.")
    actions = e.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", formatter_class=formatter, help="the exercises, their order and what each uses")
    start = actions.add_parser("start", formatter_class=formatter, help="write a workspace of starter files and a README.md")
    check = actions.add_parser("check", formatter_class=formatter, help="grade a workspace; exit 0 only when all pass")
    solve = actions.add_parser("solve", formatter_class=formatter, help="fill a workspace with the reference solutions")
    for p in (start, check, solve):
        p.add_argument("dir", metavar="DIR", help="the workspace folder")
        p.add_argument("--only", metavar="NAME,...", help="only these exercises (see: minillm exercises list)")
    check.add_argument("--json", metavar="PATH", help="also write the results in Gradescope's results.json format")
    check.add_argument("--time-limit", type=float, default=exercises.grader.TIME_LIMIT_S, metavar="S",
                       help="seconds each exercise file may run")
    check.add_argument("--memory-mb", type=int, default=exercises.grader.MEMORY_LIMIT_MB, metavar="MB",
                       help="address-space limit of each grading process (where the system supports one)")


def run_exercises(args, usage_error):
    """Run the chosen action; returns the exit code. ``usage_error``: the CLI's exception for exit code 2."""
    try:
        chosen = exercises.select(getattr(args, "only", None))
    except ValueError as e:
        raise usage_error(str(e)) from None
    if args.action == "list":
        return _list()
    if args.action == "start":
        written = exercises.start(args.dir, args.only)
        print(f"wrote {len(written) - 1} exercise files and README.md to {args.dir}; when one is written: "
              f"minillm exercises check {args.dir} --only {chosen[0].name}")
        return 0
    if args.action == "solve":
        written = exercises.solve(args.dir, args.only)
        print(f"wrote the reference solutions of {len(chosen)} exercises to {args.dir}")
        return 0
    if not args.time_limit > 0 or args.memory_mb < 256:
        raise usage_error(f"--time-limit must be > 0 and --memory-mb at least 256, got {args.time_limit} and "
                          f"{args.memory_mb}")
    results = exercises.check(args.dir, args.only, args.json, args.time_limit, args.memory_mb)
    print(exercises.format_table(results))
    if args.json:
        print(f"wrote {args.json} (Gradescope format)")
    return 0 if all(r["status"] == "passed" for r in results) else 1


def _list():
    for i, e in enumerate(exercises.EXERCISES, start=1):
        twins = ", ".join(f"{module}.{qualname}" for module, qualname in e.lesson)
        print(f"{i:>2}. {e.name:<18} {e.title}")
        print(f"    {'':<18} writes {twins}; uses: {', '.join(e.needs) or 'nothing before it'}")
    print("Start a workspace: minillm exercises start DIR")
    return 0
