"""Data parallelism over processes: MPI between CPU processes (mpi4py), NCCL between GPUs.

Each of the N processes ("ranks") holds a whole replica of the model and takes its rows of every
global batch. The loss of the batch is a mean over its counted targets, so its gradient is a sum
of per-rank shares:

    L = (1/n) sum_i l_i,   n = sum_r n_r      =>   dL/dW = sum_r (n_r/n) dL_r/dW,   L_r = (1/n_r) sum_{i in r} l_i

Every rank computes dL_r/dW with the ordinary backward, scales it by n_r/n, and one all-reduce
(a sum, in place, over one flat buffer holding every gradient) leaves dL/dW on every rank. The
optimizer step then runs identically everywhere, so the replicas never drift apart. N ranks
compute the mathematics of one process with the same global batch; only the order of additions
in the sums changes (float32 rounding).

    mpiexec -n 2 minillm train ...        # MPI gives each process its rank and the world size

Rank 0 alone prints, logs and writes checkpoints; every rank reads them to resume. Collective
operations wait at most ``timeout_s`` (MINILLM_MPI_TIMEOUT, 300 s): a rank that died or hangs
ends the job with a message instead of leaving the others waiting for ever.

On the CuPy backend the gradients are summed by NCCL (cupy.cuda.nccl) on the devices, the
communicator's id broadcast over MPI; the rest is the same.
"""
import os
import sys
import time

import numpy as np

from .. import backend

LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE")
DEFAULT_TIMEOUT_S = 300.0


def launched_size():
    """The world size an MPI launcher announced in the environment (mpiexec of MPICH or Open MPI), or 1."""
    for name in LAUNCHER_SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


def timeout_from_environment():
    """MINILLM_MPI_TIMEOUT in seconds (default 300): how long a collective operation may wait."""
    text = os.environ.get("MINILLM_MPI_TIMEOUT", str(DEFAULT_TIMEOUT_S))
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"MINILLM_MPI_TIMEOUT must be a number of seconds > 0, got {text!r}")
    return value


class CollectiveTimeout(RuntimeError):
    """A collective operation waited longer than the timeout: another rank has died or hangs."""


class World:
    """The processes of one training job. A single process is a World of size 1 with no MPI at all.

    rank, size: this process's number and how many there are; comm: the mpi4py communicator or None.
    """

    def __init__(self, comm=None, timeout_s=DEFAULT_TIMEOUT_S):
        self.comm, self.timeout_s = comm, timeout_s
        self.rank = 0 if comm is None else comm.Get_rank()
        self.size = 1 if comm is None else comm.Get_size()
        self._flat = None
        self.nccl = None
        self.reduce_seconds = 0.0       # time spent in gradient all-reduces (the communication share)

    @property
    def is_main(self):
        """True on rank 0, the one that prints and writes files."""
        return self.rank == 0

    # ------------------------------------------------------------------ collectives with a deadline
    def _wait(self, request, what):
        """Poll a non-blocking MPI request until it completes or timeout_s pass (then CollectiveTimeout).

        The first second is a busy poll: MPI moves a large message along only while it is polled,
        and a step's all-reduce takes milliseconds. A rank still waiting after that (for rank 0
        writing a checkpoint, say) polls every millisecond instead, leaving the core to others."""
        start = time.monotonic()
        deadline = start + self.timeout_s
        while not request.Test():
            now = time.monotonic()
            if now > start + 1.0:
                time.sleep(0.001)
            if now > deadline:
                raise CollectiveTimeout(
                    f"rank {self.rank}: no answer from the other ranks within {self.timeout_s:g} s during {what}; "
                    "a rank has failed or been killed (MINILLM_MPI_TIMEOUT sets the limit)")

    def allreduce(self, array, what="an all-reduce"):
        """Sum ``array`` (a contiguous NumPy array) over every rank, in place; a no-op for one process."""
        if self.size == 1:
            return array
        from mpi4py import MPI
        self._wait(self.comm.Iallreduce(MPI.IN_PLACE, array, op=MPI.SUM), what)
        return array

    def sum_floats(self, *values, what="an all-reduce of the loss"):
        """The sums over all ranks of a few Python numbers, as a tuple of floats."""
        buf = np.array(values, dtype=np.float64)
        return tuple(float(v) for v in self.allreduce(buf, what))

    def barrier(self, what="a barrier"):
        """Wait until every rank arrives (with the timeout)."""
        if self.size > 1:
            self._wait(self.comm.Ibarrier(), what)

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank (small Python objects: a folder name, a checksum)."""
        return obj if self.size == 1 else self.comm.bcast(obj, root=0)

    def abort(self, code=1):
        """End every rank of the job now (after this rank printed why)."""
        if self.size > 1:
            sys.stdout.flush()
            sys.stderr.flush()
            # mpiexec forwards a rank's output through a pipe; Abort can kill the job before the
            # launcher has read the last lines, and the reason would be lost. Give it a moment.
            time.sleep(0.5)
            self.comm.Abort(code)

    # ------------------------------------------------------------------ gradients
    def reduce_gradients(self, params, scale):
        """grad <- sum over ranks of scale_r * grad_r for every parameter, in one all-reduce of one
        flat buffer (on NumPy the .grad arrays are views into it)."""
        params = list(params)
        if self.size == 1:
            if scale != 1.0:
                for p in params:
                    p.grad *= scale
            return
        start = time.perf_counter()
        if backend.get_array_module(params[0].grad) is not np:
            self._nccl_reduce(params, scale)
        else:
            flat = self._flat_gradients(params)
            flat *= scale
            self.allreduce(flat, "the gradient all-reduce")
        self.reduce_seconds += time.perf_counter() - start

    def _flat_gradients(self, params):
        """One contiguous array whose slices are every parameter's .grad (the grads become views of it,
        so the all-reduce needs no packing; zero_grad and += keep them views). Rebuilt when a .grad
        array was replaced."""
        flat = self._flat
        if flat is None or flat.dtype != params[0].grad.dtype or any(p.grad.base is not flat for p in params):
            flat = np.empty(sum(p.grad.size for p in params), dtype=params[0].grad.dtype)
            offset = 0
            for p in params:
                n = p.grad.size
                flat[offset:offset + n] = p.grad.reshape(-1)
                p.grad = flat[offset:offset + n].reshape(p.grad.shape)
                offset += n
            self._flat = flat
        return flat

    def _nccl_reduce(self, params, scale):
        """The same sum on CuPy arrays with NCCL, device to device (no host copies)."""
        import cupy
        from cupy.cuda import nccl
        if self.nccl is None:
            uid = self.broadcast(nccl.get_unique_id() if self.is_main else None)
            self.nccl = nccl.NcclCommunicator(self.size, uid, self.rank)
        flat = cupy.concatenate([p.grad.reshape(-1) for p in params]) * scale
        kinds = {np.dtype(np.float32): nccl.NCCL_FLOAT32, np.dtype(np.float64): nccl.NCCL_FLOAT64}
        self.nccl.allReduce(flat.data.ptr, flat.data.ptr, flat.size, kinds[np.dtype(flat.dtype)], nccl.NCCL_SUM,
                            cupy.cuda.get_current_stream().ptr)
        offset = 0
        for p in params:
            n = p.grad.size
            p.grad[...] = flat[offset:offset + n].reshape(p.grad.shape)
            offset += n

    def check_same_weights(self, params):
        """Raise unless every rank holds the same initial weights: a checksum of them, gathered from all."""
        params = list(params)
        if self.size == 1:
            return
        checksum = sum(float(backend.to_numpy(p.data).astype(np.float64).sum()) * (i + 1) for i, p in enumerate(params))
        gathered = np.empty(self.size)
        self._wait(self.comm.Iallgather(np.array([checksum]), gathered), "the check of the initial weights")
        if not (gathered == gathered[0]).all():
            raise RuntimeError(f"rank {self.rank}: the ranks start from different weights (checksums "
                               f"{gathered.tolist()}); every rank must build the model from the same seed")


def cores_per_rank(world):
    """The cores each rank may use. A launcher that binds processes (srun, mpiexec --bind-to) has
    already given this one its share; one that does not (MPICH's default) leaves every rank all the
    machine's cores, which the ranks on this machine then split evenly."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if world.size == 1 or cores < (os.cpu_count() or cores):
        return cores
    from mpi4py import MPI
    local = world.comm.Split_type(MPI.COMM_TYPE_SHARED).Get_size()
    return max(1, cores // local)


_world = {}


def world():
    """This process's World: under an MPI launcher with more than one rank, MPI.COMM_WORLD (mpi4py
    imported then, and a clear error when it is missing); otherwise a single process."""
    if "world" not in _world:
        size = launched_size()
        if size <= 1:
            _world["world"] = World()
        else:
            try:
                from mpi4py import MPI
            except ImportError:
                raise RuntimeError(f"this process was started by an MPI launcher with {size} ranks, but mpi4py is "
                                   "not installed: pip install \"minillm[mpi]\"") from None
            _world["world"] = World(MPI.COMM_WORLD, timeout_from_environment())
            _share_cores(_world["world"])
    return _world["world"]


def current_world():
    """The World made by world() in this process, or None when nothing asked for one yet."""
    return _world.get("world")


def _share_cores(w):
    """Give this rank's BLAS and compiled kernels its share of the machine's cores: several ranks on
    one machine each asking for every core would wait on each other."""
    n = cores_per_rank(w)
    from ..kernels.cpu import jit
    from ..kernels.cpu.threads import _numpy_blas
    jit.set_threads(n)
    lib = _numpy_blas()
    if lib is not None:
        lib.set_num_threads(n)


class ShardedTask:
    """A task (tasks.py) seen from one rank: its rows of every global batch, and the loss and the
    gradients of the whole batch, summed over the ranks.

    Every rank draws the same global batch (the same generator, the same seed) and keeps rows
    [B r / N, B (r + 1) / N). loss() is the mean over all ranks' counted targets (every rank gets
    the same number); backward() leaves every rank with the whole batch's gradient. Dropout masks
    come from a per-rank generator seeded from minillm's main one, which advances identically on
    every rank: masks differ between ranks, and a run repeats exactly.
    """

    def __init__(self, task, world):
        if task.batch_size < world.size:
            raise ValueError(f"the batch size ({task.batch_size}) must be at least the number of MPI ranks "
                             f"({world.size}): each rank takes its rows of every batch")
        self.task, self.world = task, world
        self.batch_size = task.batch_size
        self._weight = 1.0

    @property
    def tokens_per_batch(self):
        """Tokens of one global batch (all ranks together)."""
        return self.task.tokens_per_batch

    def rows(self, n):
        """This rank's rows of an n-row batch."""
        bounds = np.linspace(0, n, self.world.size + 1).astype(int)
        return slice(bounds[self.world.rank], bounds[self.world.rank + 1])

    def batch(self, split, rng):
        """The task's global batch, cut to this rank's rows (every array has the batch on axis 0)."""
        whole = self.task.batch(split, rng)
        rows = self.rows(whole[0].shape[0])
        return tuple(a[rows] for a in whole)

    def loss(self, model, batch):
        """The whole batch's mean loss: sum_r n_r L_r / sum_r n_r, n_r this rank's counted targets."""
        seeds = backend.cpu_rng().integers(0, 2 ** 63, size=self.world.size)
        with backend.thread_rng(np.random.default_rng(seeds[self.world.rank])):
            local = self.task.loss(model, batch)
        labels = backend.to_numpy(batch[-1])
        counted = float((labels != self.task.loss_fn.ignore_index).sum())
        n, total = self.world.sum_floats(counted, counted * local)
        self._weight = counted / n if n else 0.0
        return total / n if n else 0.0

    def backward(self, model):
        """This rank's backward, then every gradient scaled by n_r / n and summed over the ranks."""
        self.task.backward(model)
        self.world.reduce_gradients(list(model.parameters()), self._weight)
