"""Checkpoints that are never half-written and never unpickled.

A checkpoint is one file, ``DIR/ckpt.npz``: the model's parameters ("model/<name>"), the
optimizer's arrays ("optim/<i>.<name>") and a JSON document ("__meta__": model kind and
config, tokenizer, step, RNG states, training options) stored as UTF-8 bytes. One file
means the weights and their description can never disagree.

Saving writes ``DIR/.ckpt.npz.tmp<pid>``, flushes it to disk (fsync), then renames it over
``ckpt.npz`` with os.replace, which is atomic: a crash at any moment leaves either the old
checkpoint or the new one, never a broken file. Loading uses allow_pickle=False, so a
checkpoint cannot run code; a truncated or corrupted file fails the zip CRC checks and is
reported in one line naming the file.
"""
import json
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

FILENAME = "ckpt.npz"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that is missing, damaged or for another model (one-line message)."""


def checkpoint_path(directory):
    """DIR/ckpt.npz, where a checkpoint of DIR lives."""
    return Path(directory) / FILENAME


def save_checkpoint(directory, model, meta, optimizer=None):
    """Atomically write model weights, optimizer state and ``meta`` (JSON-able dict) to DIR/ckpt.npz."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    if optimizer is not None:
        arrays.update({f"optim/{k}": v for k, v in optimizer.state_arrays().items()})
        meta = {**meta, "optimizer_step": optimizer.step_count}
    meta = {**meta, "format": FORMAT_VERSION}
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    final = directory / FILENAME
    tmp = directory / f".{FILENAME}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)                          # the atomic step
    finally:
        if tmp.exists():
            tmp.unlink()
    try:                                                # make the rename itself durable
        fd = os.open(directory, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    except OSError:
        pass
    return final


def check_array_headers(path):
    """Before any array is read: each member's .npy header (shape, dtype) must describe no more bytes
    than the member holds, so a 3 KB file claiming petabytes is refused instead of allocated."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(member)
                claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if claimed > info.file_size:
                    raise CheckpointError(f"checkpoint {path}: {info.filename} claims shape {shape} of {dtype} "
                                          f"({claimed:,} bytes) but holds {info.file_size:,} bytes")


def load_checkpoint(directory, expected_kind=None):
    """Read DIR/ckpt.npz -> (meta, model_state, optimizer_arrays). Raises CheckpointError with one line."""
    path = Path(directory)
    path = path if path.suffix == ".npz" else path / FILENAME
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        check_array_headers(path)
        with np.load(path, allow_pickle=False) as z:
            if "__meta__" not in z.files:
                raise CheckpointError(f"checkpoint {path} has no metadata: not a minillm checkpoint")
            meta = json.loads(z["__meta__"].tobytes().decode("utf-8"))
            model_state = {k[6:]: z[k] for k in z.files if k.startswith("model/")}
            optim = {k[6:]: z[k] for k in z.files if k.startswith("optim/")}
    except CheckpointError:
        raise
    # what a damaged zip or .npy member can raise, from zipfile, zlib, struct and NumPy's reader
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, struct.error, EOFError, OSError, ValueError,
            KeyError, UnicodeDecodeError, NotImplementedError, OverflowError) as e:
        raise CheckpointError(f"checkpoint {path} is truncated or corrupted ({type(e).__name__}: {e})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {path}: its metadata is a JSON {type(meta).__name__}, not an object: "
                              "not a minillm checkpoint")
    if expected_kind is not None and meta.get("kind") != expected_kind:
        raise CheckpointError(f"checkpoint {path} holds a {meta.get('kind')!r} model, expected {expected_kind!r}")
    return meta, model_state, optim
