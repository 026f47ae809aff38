"""Data parallelism on the CPU's cores: one batch split into shards, one model replica per thread.

The loss of a batch is a mean over its N tokens, so its gradient is a sum over the tokens, and a
sum can be cut anywhere:

    L = (1/N) sum_i l_i       =>   dL/dW = sum_k [ (1/N) sum_{i in shard k} dl_i/dW ]

Each shard's share is what a replica's backward gives when it is fed its rows of dL/dlogits (those
rows already carry the 1/N of the whole batch). So ``DataParallel`` does what
``torch.nn.DataParallel`` does on GPUs, here with threads on CPU cores:

    forward(x):   split x along axis 0 -> each replica's forward in its own thread -> concatenate
    loss:         computed once, on the concatenated logits, by the caller (as usual)
    backward(dy): split dy the same way -> each replica's backward in its thread
                  -> add every replica's parameter gradients into the model's .grad   ("all-reduce")

The replicas share the model's weight arrays (no copy; the optimizer's in-place update reaches them
all) and have their own gradients and forward caches. The math is the same as one forward over the
whole batch; only the order of the additions changes (float32 rounding, ~1e-7 relative).

Why it is faster: NumPy runs element-wise work (GELU, softmax, LayerNorm) on one core, and only its
BLAS matrix products use the others. With one replica per core, each replica's element-wise work
runs on its own core too (NumPy releases the GIL inside its loops). BLAS must then run one thread
per replica: two replicas each asking a 2-thread BLAS for its threads would wait on each other
(docs/benchmarks.md). So the parallel sections set NumPy's BLAS to one thread, through
threadpoolctl, and restore it afterwards (``blas_threads``).

Dropout: each replica draws its masks from its own generator, seeded from minillm's main generator
once per forward in the main thread, so a run is reproducible whatever order the threads run in.
"""
import copy
import os
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

from .. import backend
from ..kernels.cpu.jit import one_thread_each
from ..kernels.cpu.threads import blas_threads
from ..nn.module import Module

def uses_the_cores(model):
    """True for a model whose engine kernels run on every core by themselves: an LSTM whose units
    kernels/cpu/lstm_parallel.py splits between the cores (one replica then trained an LSTM LM
    step at 0.95x PyTorch's speed, two replicas, each on one core, at 0.80x; docs/benchmarks.md)."""
    lstm = getattr(model, "lstm", None)
    if lstm is None or not hasattr(lstm, "hidden_size") or os.environ.get("MINILLM_KERNELS") == "plain":
        return False
    from ..kernels.cpu import lstm_parallel
    return lstm_parallel.parts(lstm.hidden_size, lstm.weight_hh_l0.data.dtype) > 1


def auto_threads(batch_size, cores=None, model=None):
    """The number of model replicas ``threads="auto"`` means: one per core this process may use (or
    ``cores``, its share when several processes train together), at most one per batch row; 1 on the
    CuPy backend, where NumPy's BLAS threads cannot be set, or for a ``model`` that
    ``uses_the_cores`` itself."""
    if backend.current() != "numpy" or not blas_threads.available() or (model is not None and uses_the_cores(model)):
        return 1
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, batch_size))


class DataParallel(Module):
    """As torch.nn.DataParallel(module): forward/backward over ``n_threads`` shards of the batch at once.

    module: a model whose ``forward(x, ...)`` takes arrays with the batch on axis 0 (token ids
    (B, T), segments, padding masks; other arguments must be None) and returns (B, ...), and whose
    ``backward(dout)`` takes the gradient of that output. ``DataParallel(model, 2)(x)`` equals
    ``model(x)``, and after ``backward(dlogits)`` ``model``'s .grad holds what ``model.backward``
    would have added. The wrapper owns no weights: give the optimizer, ``state_dict`` and checkpoints
    the model itself (the wrapper lists its parameters as ``module.<name>``, as PyTorch's does).
    NumPy backend only.
    """

    def __init__(self, module, n_threads):
        if not isinstance(n_threads, int) or isinstance(n_threads, bool) or n_threads < 1:
            raise ValueError(f"DataParallel: n_threads must be an integer >= 1, got {n_threads!r}")
        if any(backend.get_array_module(p.data) is not np for p in module.parameters()):
            raise ValueError("DataParallel: the model's parameters must be NumPy arrays (it runs threads on "
                             "CPU cores); on a GPU, train the model itself")
        if n_threads > 1 and not blas_threads.available():
            raise RuntimeError("DataParallel: n_threads > 1 needs a BLAS whose threads threadpoolctl can set; "
                               "none was found in NumPy's libraries, so use n_threads=1")
        self.module, self.n_threads = module, n_threads
        self._replicas = [module] + [copy.deepcopy(module) for _ in range(n_threads - 1)]
        self._pool = ThreadPoolExecutor(n_threads - 1) if n_threads > 1 else None
        self._rows = None
        self._sync()                  # the copies' own weight arrays are dropped here

    def _sync(self):
        """Make every replica use the model's current weight arrays and train/eval flags."""
        for (_, main), *copies in zip(self.module.named_modules(), *(r.named_modules() for r in self._replicas[1:])):
            for _, rep in copies:
                rep.training = main.training
        for (_, p), *copies in zip(self.module.named_parameters(), *(r.named_parameters() for r in self._replicas[1:])):
            for _, q in copies:
                q.data = p.data

    def _run(self, work):
        """work(k) for every replica k, replica 0 in this thread and the others in the pool; BLAS at one thread."""
        if self._pool is None:
            return [work(0)]
        with blas_threads(1), one_thread_each():   # each replica's BLAS and compiled kernels on its own core
            futures = [self._pool.submit(work, k) for k in range(1, self.n_threads)]
            try:
                first = work(0)
            finally:                     # even if replica 0 failed: no thread may still run after BLAS is restored
                wait(futures)
            return [first] + [f.result() for f in futures]

    def forward(self, x, *args, **kwargs):
        """x: (B, ...) and the other batch arrays -> the model's output (B, ...), the shards concatenated."""
        B = x.shape[0]
        if B < self.n_threads:
            raise ValueError(f"DataParallel: the batch must have at least n_threads={self.n_threads} rows, "
                             f"got {B}")
        for name, value in list(enumerate(args)) + list(kwargs.items()):
            if value is not None and not (hasattr(value, "shape") and value.shape[:1] == (B,)):
                raise ValueError(f"DataParallel: argument {name} must be an array with the batch ({B}) on "
                                 f"axis 0, or None; got {type(value).__name__}")
        self._sync()
        bounds = np.linspace(0, B, self.n_threads + 1).astype(int)
        self._rows = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
        seeds = backend.cpu_rng().integers(0, 2 ** 63, size=self.n_threads)

        def work(k):
            rows = self._rows[k]
            with backend.thread_rng(np.random.default_rng(seeds[k])):
                return self._replicas[k](x[rows], *(a if a is None else a[rows] for a in args),
                                         **{n: a if a is None else a[rows] for n, a in kwargs.items()})
        return np.concatenate(self._run(work), axis=0)

    def backward(self, dout):
        """dout: (B, ...) -> adds every replica's parameter gradients into the model's .grad; returns None
        (the models' inputs are token ids, which have no gradient)."""
        if self._rows is None:
            raise RuntimeError("DataParallel.backward() was called without a preceding forward()")
        rows, self._rows = self._rows, None

        def work(k):
            if k > 0:
                self._replicas[k].zero_grad()
            self._replicas[k].backward(dout[rows[k]])
        self._run(work)
        for p, *copies in zip(self.module.parameters(), *(r.parameters() for r in self._replicas[1:])):
            for q in copies:
                p.grad += q.grad

    def extra_repr(self):
        """n_threads, as shown in the repr."""
        return f"n_threads={self.n_threads}"
