"""The ``minillm`` command: gradcheck (and train / generate as they land).

Errors the user can fix print one line, ``minillm: error: ...``, and exit 2 for
usage mistakes or 1 for runtime failures; no traceback.
"""
import argparse
import sys


class UsageError(Exception):
    """A bad option or argument: exit code 2."""


def cmd_gradcheck(args):
    from . import backend
    from .gradcheck import TOLERANCE
    from .gradcheck_suite import format_table, run_suite
    if args.backend != "numpy":
        backend.use(args.backend)
    rows = run_suite()
    print(format_table(rows))
    return 0 if all(err <= TOLERANCE for _, _, err in rows) else 1


def build_parser():
    p = argparse.ArgumentParser(prog="minillm", description="Language models from first principles, backward passes by hand.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    g = sub.add_parser("gradcheck", help="check every hand-written backward against finite differences (float64)")
    g.add_argument("--backend", choices=["numpy", "cupy"], default="numpy")
    g.set_defaults(func=cmd_gradcheck)
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except UsageError as e:
        print(f"minillm: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, RuntimeError, OSError) as e:
        print(f"minillm: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
