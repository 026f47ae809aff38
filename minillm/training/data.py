"""Data: the built-in corpus, user text files, splits, batches, BERT masking, a labelled set.

The built-in corpus needs no network: on first use it is made from the docstrings of
the Python standard library installed on this machine (module, class and function
docstrings, in sorted file order), cached under ``$MINILLM_CACHE`` (default
``~/.cache/minillm``), and its size and SHA-256 are printed, so two machines can tell
whether they train on the same text. No third-party text is stored in this repository.

The labelled set (for BERT fine-tuning) asks: which standard-library package does this
docstring come from? Each example is the first paragraph of a function or class
docstring; the label is its top-level package.
"""
import ast
import hashlib
import os
import sysconfig
from pathlib import Path

import numpy as np

from .. import backend
from ..files import written_whole

LABEL_PACKAGES = ("asyncio", "email", "multiprocessing", "unittest")
_SKIP_DIRS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "dist-packages", "ensurepip", "turtledemo",
              "__pycache__", "pydoc_data", "tkinter", "venv"}


def cache_dir():
    """Where the built-in corpus is cached: $MINILLM_CACHE, else ~/.cache/minillm (created if missing)."""
    path = Path(os.environ.get("MINILLM_CACHE", Path.home() / ".cache" / "minillm"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _stdlib_files():
    root = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for path in sorted(root.rglob("*.py")):
        if not _SKIP_DIRS.intersection(path.relative_to(root).parts[:-1]):
            files.append((root, path))
    return files


def _docstrings(path):
    """(kind, docstring) for the module and every class/function in one file, in source order."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return []
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if doc and len(doc) > 20:
                out.append(("module" if isinstance(node, ast.Module) else "def", doc))
    return out


def _make_corpus():
    return "\n\n".join(doc for _, p in _stdlib_files() for _, doc in _docstrings(p)) + "\n"


def builtin_corpus(verbose=True):
    """The standard-library docstring corpus as one string (made once, then read from the cache).

    Where the cache folder cannot be created or written (a read-only home directory, say), the
    corpus is made in memory at every call instead, the same text, and a note says so."""
    text, where = None, "made in memory, not cached"
    try:
        path = cache_dir() / "stdlib_docstrings.txt"
        if path.exists():
            text = path.read_text(encoding="utf-8")
        else:
            text = _make_corpus()
            with written_whole(path) as tmp:            # a failed write leaves no partial file
                tmp.write_text(text, encoding="utf-8")
        where = str(path)
    except OSError as e:
        if verbose:
            print(f"note: the built-in corpus cannot be cached ({e.strerror or e}: {e.filename}); set "
                  "MINILLM_CACHE to a writable folder to keep it between runs")
        text = _make_corpus() if text is None else text
    if verbose:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        print(f"built-in corpus: {where} ({len(text.encode('utf-8')) / 1e6:.2f} MB, sha256 {digest}...)")
    return text


def read_text_file(path):
    """A user's UTF-8 text file, with clear errors for missing, empty or non-UTF-8 files."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"data file {path} is a directory, not a text file")
    if not p.exists():
        raise FileNotFoundError(f"data file {path} does not exist")
    if not p.is_file():
        raise ValueError(f"data file {path} is not a regular file (a pipe or a device?)")
    try:
        text = p.read_text(encoding="utf-8-sig")          # -sig: drop the byte-order mark some editors write
    except UnicodeDecodeError as e:
        raise ValueError(f"data file {path} is not valid UTF-8 (byte {e.start}: {e.reason})") from None
    if not text.strip():
        raise ValueError(f"data file {path} is empty")
    return text


def train_val_split(ids, val_fraction=0.1):
    """Contiguous split: the first 90 % trains, the last 10 % validates (no leakage between them)."""
    ids = np.asarray(ids, dtype=np.int64)
    n = int(len(ids) * (1 - val_fraction))
    return ids[:n], ids[n:]


def get_batch(data, block_size, batch_size, rng):
    """Random windows of a token stream. data: (N,) ints -> x, y: (batch_size, block_size), y = x shifted by one."""
    if len(data) <= block_size:
        raise ValueError(f"the text has {len(data)} tokens, fewer than block_size + 1 = {block_size + 1}; "
                         "use more text or a smaller --block-size")
    starts = rng.integers(0, len(data) - block_size, size=batch_size)
    x = np.stack([data[s:s + block_size] for s in starts])
    y = np.stack([data[s + 1:s + 1 + block_size] for s in starts])
    return backend.to_device(x), backend.to_device(y)


def mask_tokens(ids, rng, mask_id, vocab_size, special_ids=(), prob=0.15):
    """BERT's masked-LM corruption (Devlin et al. 2018).

    Each non-special position is chosen with probability ``prob``; a chosen token becomes
    [MASK] 80 % of the time, a random token 10 %, and stays unchanged 10 %. Labels are the
    original ids at chosen positions and -100 (ignored by the loss) elsewhere.
    ids: (B, T) ints -> inputs (B, T), labels (B, T).
    """
    ids = np.asarray(ids)
    special = np.isin(ids, list(special_ids))
    chosen = (rng.random(ids.shape) < prob) & ~special
    labels = np.where(chosen, ids, -100)
    roll = rng.random(ids.shape)
    inputs = np.where(chosen & (roll < 0.8), mask_id, ids)
    random_tok = rng.integers(0, vocab_size, size=ids.shape)
    inputs = np.where(chosen & (roll >= 0.8) & (roll < 0.9), random_tok, inputs)
    return inputs, labels


def first_per_class(examples, n):
    """The first n // num_classes examples of each label, in their original order: a smaller,
    still balanced training set (for fine-tuning with scarce labels). examples: [(text, label)]."""
    labels = sorted({label for _, label in examples})
    if not len(labels) <= n <= len(examples):
        raise ValueError(f"train examples must lie in [{len(labels)}, {len(examples)}] (at least one per class), got {n}")
    quota, taken = {label: n // len(labels) for label in labels}, []
    for text, label in examples:
        if quota[label] > 0:
            quota[label] -= 1
            taken.append((text, label))
    return taken


def labelled_docstrings(packages=LABEL_PACKAGES, max_chars=200, seed=0, test_fraction=0.2):
    """The package-classification set: (train, test, label_names); train/test are lists of (text, label).

    Classes are balanced (each cut to the smallest class's size) and split at random with ``seed``.
    """
    per_class = {name: [] for name in packages}
    for root, path in _stdlib_files():
        top = path.relative_to(root).parts[0]
        if top in per_class:
            for kind, doc in _docstrings(path):
                if kind == "def":
                    first = doc.split("\n\n")[0].replace("\n", " ").strip()
                    if len(first) >= 30:
                        per_class[top].append(first[:max_chars])
    per_class = {name: sorted(set(docs)) for name, docs in per_class.items()}   # duplicates out first
    n = min(len(v) for v in per_class.values())
    if n < 10:
        raise RuntimeError(f"too few docstrings in this Python installation for {packages}")
    rng = np.random.default_rng(seed)
    examples = []
    for label, name in enumerate(packages):
        docs = per_class[name]
        rng.shuffle(docs)
        examples += [(d, label) for d in docs[:n]]
    order = rng.permutation(len(examples))
    examples = [examples[i] for i in order]
    n_test = int(len(examples) * test_fraction)
    return examples[n_test:], examples[:n_test], list(packages)
