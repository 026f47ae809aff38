"""A spin barrier for threads that each run one long compiled loop (Numba) and meet every step.

Thread p of P, at the end of its step s (s = 1, 2, ...), adds 1 to a shared counter and waits
until the counter reaches P s: then every thread has finished step s. The counter only grows,
so no thread has to reset it. The add and the read are atomic operations (LLVM's atomicrmw and
an acquire load, written here as Numba intrinsics), so the writes a thread made before it
arrived are seen by the others after they leave, on any processor.

Waiting spins: the threads own a core each (lstm_parallel.py starts as many as Numba's thread
count), and a meeting costs about a microsecond, where waking a thread through Python or Numba's
thread pool costs 50-100 us. A thread that waits longer than ``limit`` reads (a thread that never
came) marks the counter failed; every thread then returns False instead of spinning on.
"""
import numpy as np

from .jit import numba

FAILED = -(1 << 62)                    # added to the counter by a thread that gave up


if numba is not None:
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    def _pointer(context, builder, array_type, array):
        ary = context.make_array(array_type)(context, builder, array)
        return cgutils.get_item_pointer(context, builder, array_type, ary, [context.get_constant(types.intp, 0)])

    @intrinsic
    def _add(typingctx, counter, value):
        """counter[0] += value atomically; returns the old value."""
        def codegen(context, builder, signature, args):
            ptr = _pointer(context, builder, signature.args[0], args[0])
            return builder.atomic_rmw("add", ptr, args[1], "seq_cst")
        return counter.dtype(counter, counter.dtype), codegen

    @intrinsic
    def _load(typingctx, counter):
        """counter[0], read atomically."""
        def codegen(context, builder, signature, args):
            ptr = _pointer(context, builder, signature.args[0], args[0])
            return builder.load_atomic(ptr, "acquire", signature.args[0].dtype.bitwidth // 8)
        return counter.dtype(counter), codegen
else:                                  # without Numba nothing runs these loops; the same meaning
    def _add(counter, value):
        counter[0] += value
        return counter[0] - value

    def _load(counter):
        return counter[0]


def meet(counter, target, limit):
    """Arrive (add 1) and wait until counter[0] >= target; False if the wait gave up or another
    thread did. counter: (1,) int64 shared by the threads."""
    _add(counter, np.int64(1))
    for _ in range(limit):
        now = _load(counter)
        if now >= target:
            return True
        if now < 0:                    # another thread gave up
            return False
    _add(counter, np.int64(FAILED))
    return False


if numba is not None:
    meet = numba.njit(inline="always", nogil=True, error_model="numpy")(meet)     # inlined into each loop
