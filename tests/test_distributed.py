"""Training over MPI ranks computes what one process computes, resumes exactly, and never hangs.

Each test starts ``mpiexec -n 2`` on tests/mpi_train.py (or on the minillm command) and compares
with the same run in one process. Skipped where mpi4py or an MPI launcher is missing
(pip install "minillm[mpi]" brings both).
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from minillm.training import distributed

SCRIPT = Path(__file__).with_name("mpi_train.py")
MPIEXEC = shutil.which("mpiexec", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
HAS_MPI4PY = importlib.util.find_spec("mpi4py") is not None
needs_mpi = pytest.mark.skipif(not (HAS_MPI4PY and MPIEXEC), reason="needs mpi4py and an MPI launcher (mpiexec): "
                                                                     "pip install \"minillm[mpi]\"")


def launch(ranks, *args, timeout=120, env=None, command=None):
    """Run mpi_train.py (or ``command``) on ``ranks`` processes (0: plainly, without mpiexec)."""
    command = command or [sys.executable, str(SCRIPT)]
    prefix = [MPIEXEC, "-n", str(ranks)] if ranks else []
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run(prefix + command + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def result(folder):
    data = np.load(Path(folder) / "result.npz")
    return data["losses"], {k: data[k] for k in data.files if k.startswith("w.")}


def assert_same_run(a, b, rtol):
    (losses_a, weights_a), (losses_b, weights_b) = a, b
    np.testing.assert_allclose(losses_a, losses_b, rtol=rtol)
    assert weights_a.keys() == weights_b.keys()
    for name in weights_a:
        np.testing.assert_allclose(weights_a[name], weights_b[name], rtol=rtol, atol=rtol * 1e-2, err_msg=name)


@needs_mpi
@pytest.mark.parametrize("model", ["gpt", "lstm"])
def test_two_ranks_compute_what_one_process_computes(tmp_path, model):
    one, two = tmp_path / "one", tmp_path / "two"
    assert launch(0, "--out", one, "--model", model).returncode == 0
    out = launch(2, "--out", two, "--model", model)
    assert out.returncode == 0, out.stderr
    assert_same_run(result(one), result(two), rtol=1e-10)          # float64: only the order of sums differs


@needs_mpi
def test_float32_runs_agree_to_float32_rounding(tmp_path):
    assert launch(0, "--out", tmp_path / "one", "--dtype", "float32").returncode == 0
    assert launch(2, "--out", tmp_path / "two", "--dtype", "float32").returncode == 0
    (losses_one, one), (losses_two, two) = result(tmp_path / "one"), result(tmp_path / "two")
    np.testing.assert_allclose(losses_one, losses_two, rtol=1e-5)
    # Adam divides by sqrt(v): a gradient that is float32 rounding noise still moves its weight by up
    # to lr, so the weights agree to a fraction of each tensor's scale, not entry by entry
    for name in one:
        assert np.abs(one[name] - two[name]).max() <= 1e-3 * np.abs(one[name]).max(), name


@needs_mpi
def test_dropout_differs_per_rank_and_repeats_across_launches(tmp_path):
    for name in ("a", "b"):
        out = launch(2, "--out", tmp_path / name, "--dropout", 0.2)
        assert out.returncode == 0, out.stderr
    first, second = result(tmp_path / "a"), result(tmp_path / "b")
    assert_same_run(first, second, rtol=0)
    assert launch(2, "--out", tmp_path / "none").returncode == 0
    assert not np.allclose(first[0], result(tmp_path / "none")[0])  # dropout was on


@needs_mpi
def test_resume_of_a_two_rank_run_continues_exactly_and_one_rank_can_take_over(tmp_path):
    straight, halves = tmp_path / "straight", tmp_path / "halves"
    assert launch(2, "--out", straight).returncode == 0
    assert launch(2, "--out", halves, "--stop-at", 4).returncode == 0
    shutil.copytree(halves, tmp_path / "single")
    assert launch(2, "--out", halves, "--resume").returncode == 0
    losses, weights = result(straight)
    resumed_losses, resumed_weights = result(halves)
    np.testing.assert_array_equal(resumed_losses, losses[4:])
    for name in weights:
        np.testing.assert_array_equal(resumed_weights[name], weights[name])
    out = launch(0, "--out", tmp_path / "single", "--resume")
    assert out.returncode == 0, out.stderr
    single_losses, single_weights = result(tmp_path / "single")
    np.testing.assert_allclose(single_losses, losses[4:], rtol=1e-10)


@needs_mpi
@pytest.mark.parametrize("how", ["kill", "raise", "hang"])
def test_a_rank_that_dies_fails_or_hangs_ends_the_whole_job_with_a_message(tmp_path, how):
    start = time.monotonic()
    out = launch(2, "--out", tmp_path, "--steps", 200, "--die-rank", 1, "--die-at", 3, "--die-how", how,
                 env={"MINILLM_MPI_TIMEOUT": "3"}, timeout=90)
    assert time.monotonic() - start < 60 and out.returncode != 0
    text = out.stdout + out.stderr
    expected = {"kill": "Killed", "raise": "rank 1 fails on purpose", "hang": "rank 0: no answer from the other ranks"}
    assert expected[how] in text, text[-2000:]


@needs_mpi
def test_the_command_line_under_mpiexec_trains_and_rank_0_alone_speaks(tmp_path):
    tiny = ["train", "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4",
            "--eval-interval", "5", "--eval-batches", "1", "--max-steps", "5", "--out", tmp_path / "run"]
    out = launch(2, *tiny, command=[sys.executable, "-m", "minillm.cli"])
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("next: minillm generate") == 1 and "MPI: 2 ranks" in out.stderr
    assert {"ckpt.npz", "log.csv", "loss.png"} <= {p.name for p in (tmp_path / "run").iterdir()}
    out = launch(2, *tiny[:-2], "--batch-size", "1", "--out", tmp_path / "small", command=[sys.executable, "-m",
                                                                                          "minillm.cli"])
    assert out.returncode != 0 and "must be at least the number of MPI ranks (2)" in out.stderr
    assert "Traceback" not in out.stderr


def test_one_process_is_a_world_of_one_without_mpi(monkeypatch):
    for name in distributed.LAUNCHER_SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert distributed.launched_size() == 1
    world = distributed.World()
    assert (world.rank, world.size, world.is_main) == (0, 1, True)
    a = np.arange(3.0)
    assert world.allreduce(a) is a and world.sum_floats(1.5, 2.0) == (1.5, 2.0)


def test_an_mpi_launch_without_mpi4py_says_what_to_install(monkeypatch):
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.setattr(distributed, "_world", {})
    with pytest.raises(RuntimeError, match=r'2 ranks, but mpi4py is not installed: pip install "minillm\[mpi\]"'):
        distributed.world()


def test_a_bad_timeout_is_named(monkeypatch):
    monkeypatch.setenv("MINILLM_MPI_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="MINILLM_MPI_TIMEOUT must be a number of seconds > 0, got 'soon'"):
        distributed.timeout_from_environment()


class _DeviceArray(np.ndarray):
    """A NumPy array that answers ``.data.ptr`` as a CuPy array does (the pointer finds it again)."""
    by_pointer = {}

    @property
    def data(self):
        _DeviceArray.by_pointer[id(self)] = self
        return type("Pointer", (), {"ptr": id(self)})()


def test_the_nccl_path_packs_sums_and_unpacks_on_the_device(monkeypatch):
    """No GPU here: fake cupy and NCCL modules check the path's bookkeeping (the id broadcast, one
    allReduce of every gradient with the right count and type, the result back in each .grad)."""
    import types
    from minillm.nn.module import Parameter
    arrays, calls = _DeviceArray.by_pointer, []

    class Communicator:
        def __init__(self, size, uid, rank):
            calls.append(("init", size, uid, rank))

        def allReduce(self, send, recv, count, dtype, op, stream):
            calls.append(("allReduce", count, dtype, op))
            arrays[recv][...] = arrays[send] * 2           # what two equal ranks would sum to

    nccl = types.SimpleNamespace(get_unique_id=lambda: "uid-0", NcclCommunicator=Communicator,
                                 NCCL_FLOAT32="f32", NCCL_FLOAT64="f64", NCCL_SUM="sum")
    cuda = types.SimpleNamespace(nccl=nccl, get_current_stream=lambda: types.SimpleNamespace(ptr=0))
    fake_cupy = types.SimpleNamespace(concatenate=lambda parts: np.concatenate(parts).view(_DeviceArray), cuda=cuda)
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy)
    monkeypatch.setitem(sys.modules, "cupy.cuda", cuda)
    monkeypatch.setitem(sys.modules, "cupy.cuda.nccl", nccl)

    class TwoRanks(distributed.World):
        def broadcast(self, obj):
            return obj

    world = TwoRanks()
    world.size = 2
    params = [Parameter(np.ones((2, 3), np.float32)), Parameter(np.ones(4, np.float32))]
    params[0].grad[...] = 3.0
    params[1].grad[...] = np.arange(4)
    world._nccl_reduce(params, 0.5)
    assert calls == [("init", 2, "uid-0", 0), ("allReduce", 10, "f32", "sum")]
    np.testing.assert_array_equal(params[0].grad, np.full((2, 3), 3.0))      # 2 ranks x 0.5 x 3
    np.testing.assert_array_equal(params[1].grad, np.arange(4.0))
