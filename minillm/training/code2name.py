"""A parallel corpus every Python installation has: the body of a standard-library function -> its name.

The task of code2seq (Alon et al. 2019): read a function's code and predict its name, as
subtokens (``read_config_file`` -> "read config file"). Each example is

    source: the body of a def, its docstring removed, every occurrence of the function's own name
            replaced by "_" (a recursive call would give the answer away), whitespace runs squeezed
    target: the name's subtokens, lower case, joined by spaces

The split is by module, from a hash of the module's path: no file gives examples to two splits,
so a module's private helpers cannot leak from training into the test. The split never depends
on the Python version's list of modules (a module that appears or disappears moves nobody else).
"""
import ast
import hashlib
import re
import sysconfig
from collections import Counter
from pathlib import Path

from ..tokenizers.word import identifier_subtokens

SPLITS = {"train": (0, 90), "val": (90, 95), "test": (95, 100)}     # percent of the hash range
# Left out: site-packages (not the standard library), the test suites (22,000 methods named test_*,
# which would make "test" most of every answer), pydoc's data and the hundred generated codecs of
# encodings/ (the same few functions in each).
SKIP = {"site-packages", "dist-packages", "__pycache__", "test", "tests", "pydoc_data", "encodings"}
MAX_SOURCE_CHARS = 600


def subtokens(name):
    """``readConfigFile`` or ``read_config_file`` -> ["read", "config", "file"] (digits kept with their word)."""
    return [w for w in identifier_subtokens(name) if w != "_"]


def split_of(relative_path):
    """"train", "val" or "test" for a module, from the SHA-256 of its path (stable across machines)."""
    bucket = int(hashlib.sha256(str(relative_path).encode("utf-8")).hexdigest(), 16) % 100
    return next(name for name, (low, high) in SPLITS.items() if low <= bucket < high)


def _body_source(node, lines):
    """The code of a def's body without its docstring, the def's own name replaced by "_"."""
    body = node.body[1:] if (node.body and isinstance(node.body[0], ast.Expr)
                             and isinstance(node.body[0].value, ast.Constant)
                             and isinstance(node.body[0].value.value, str)) else node.body
    if not body:
        return ""
    text = "\n".join(lines[body[0].lineno - 1:body[-1].end_lineno])
    text = re.sub(rf"\b{re.escape(node.name)}\b", "_", text)
    return " ".join(text.split())


def examples_of_file(path):
    """[(source, target)] for every named function of one file (dunder methods and bodies of one
    statement such as ``pass`` or ``raise NotImplementedError`` left out: nothing to learn from)."""
    try:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return []
    lines, out = text.splitlines(), []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.name.startswith("__"):
            continue
        target = " ".join(subtokens(node.name.lstrip("_")))
        source = _body_source(node, lines)
        trivial = source in ("pass", "...") or source.startswith("raise NotImplementedError")
        if target and len(source) >= 20 and not trivial:
            out.append((source[:MAX_SOURCE_CHARS], target))
    return out


def build(root=None):
    """{"train": [...], "val": [...], "test": [...]} of (source, target) pairs from the standard library.

    A body that occurs more than once (the codecs of encodings/ repeat the same encode and decode
    a hundred times) is dropped everywhere: copies in two splits would leak the answer, and copies
    in one would weigh boilerplate a hundred times."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if not SKIP.intersection(relative.parts[:-1]):
            found += [(split_of(relative), source, target) for source, target in examples_of_file(path)]
    counts = Counter(source for _, source, _ in found)
    corpus = {name: [] for name in SPLITS}
    for split, source, target in found:
        if counts[source] == 1:
            corpus[split].append((source, target))
    return corpus
