"""Writing a user's files whole or not at all.

    with written_whole("out/vocab.json") as tmp:
        tmp.write_text(...)                  # or any writer given the path tmp

The data goes to a temporary file beside the target; only when the block ends without an error
does ``os.replace`` put it in the target's place (one atomic rename on every operating system).
A failure leaves the previous file byte for byte as it was, and no temporary file behind.
"""
import os
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def written_whole(path):
    """Yield a temporary Path beside ``path``; on success it replaces ``path``, on failure it is removed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")   # keeps the suffix for writers that look
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
