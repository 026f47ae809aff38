"""Let glibc keep freed array memory for reuse instead of handing it back to the OS.

A training step allocates and frees the same large temporaries every step (activations of shape
(B, T, 4C), attention scores). With glibc's defaults each is a fresh mmap that the kernel must
page-fault and zero again. Raising the mmap and trim thresholds (what PyTorch gets from its own
allocator) keeps that memory in the process: the peak is unchanged, idle memory may stay higher.
Linux with glibc only; ``MINILLM_MALLOC_TUNING=0`` turns it off. ``minillm/__init__.py`` calls
``keep_freed_memory()`` once.
"""
import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory():
    """Raise glibc's mmap threshold to 32 MiB and its trim threshold to 512 MiB; True if it took."""
    if os.environ.get("MINILLM_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 32 * 2**20)     # glibc's largest allowed value
                    and libc.mallopt(M_TRIM_THRESHOLD, 512 * 2**20))
    except (OSError, AttributeError):                                # not glibc (musl, ...)
        return False
