"""The training loop: loss goes down, resume is exact, NaN stops cleanly, checkpoints are safe."""
import csv

import numpy as np
import pytest

import minillm
from minillm.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minillm.models import GPT, GPTConfig, LSTMLM, LSTMConfig
from minillm.training.optim import AdamW, param_groups
from minillm.training.parallel import blas_threads
from minillm.training.tasks import LMTask
from minillm.training.trainer import LOG_COLUMNS, TrainConfig, Trainer, TrainingDiverged

TEXT = "".join(f"line {i % 17}: the cat sat on the mat, then {i * 7 % 13} dogs ran.\n" for i in range(300))
CFG = GPTConfig(vocab_size=0, block_size=16, n_layer=2, n_head=2, n_embd=16, dropout=0.1)


def make(out, dtype=np.float32, lr=3e-3, max_steps=20, model="gpt", threads=1):
    minillm.manual_seed(0)
    chars = sorted(set(TEXT))
    ids = np.array([chars.index(c) for c in TEXT])
    if model == "gpt":
        cfg = GPTConfig(**{**CFG.__dict__, "vocab_size": len(chars)})
        net = GPT(cfg)
    else:
        cfg = LSTMConfig(len(chars), 8, 16, 1, 0.1, 16)
        net = LSTMLM(cfg)
    net.to(dtype=dtype)
    task = LMTask(ids[:9000], ids[9000:], 16, 4)
    opt = AdamW(param_groups(net, 0.1), lr=lr)
    tcfg = TrainConfig(max_steps=max_steps, lr=lr, warmup_steps=3, eval_interval=5, eval_batches=2, log_interval=5,
                       threads=threads)
    meta = {"kind": model, "model_config": cfg.__dict__}
    return Trainer(net, task, opt, tcfg, out, meta, quiet=True)


def test_loss_goes_down_and_log_is_written(tmp_path):
    t = make(tmp_path, max_steps=60)
    first_val = t.evaluate()
    t.run()
    assert t.last_val < first_val - 0.5
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert list(rows[0]) == LOG_COLUMNS and rows[-1]["step"] == "60" and rows[-1]["val_loss"]
    assert (tmp_path / "loss.png").stat().st_size > 1000


@pytest.mark.parametrize("dtype,threads", [(np.float64, 1), (np.float32, 1), (np.float32, 2)])
@pytest.mark.parametrize("model", ["gpt", "lstm"])
def test_resume_is_exact(tmp_path, dtype, model, threads):
    """N steps in one go == N/2 steps, a fresh process-like restart from the checkpoint, N/2 steps (dropout
    on; with threads=2 each of two data-parallel replicas draws its own dropout masks)."""
    if threads > 1 and not blas_threads.available():
        pytest.skip("NumPy's BLAS is not an OpenBLAS minillm can set")
    full = make(tmp_path / "full", dtype, model=model, threads=threads)
    full.run()
    half = make(tmp_path / "half", dtype, model=model, threads=threads)
    half.run(stop_step=10)
    minillm.manual_seed(123)                                   # a restarted program has other RNG state ...
    resumed = make(tmp_path / "half", dtype, model=model, threads=threads)   # ... and fresh random weights
    minillm.manual_seed(456)
    assert resumed.resume() == 10
    resumed.run()
    losses_full = [l for _, l in full.history]
    losses_split = [l for _, l in half.history] + [l for _, l in resumed.history]
    assert losses_split == losses_full                          # identical, not just close
    assert resumed.last_val == full.last_val


def test_resume_drops_the_log_rows_after_the_checkpoint(tmp_path):
    """A run stopped between checkpoints (Ctrl-C) logged steps past its checkpoint; the resumed run logs
    them again, so log.csv must list every step once, in order, as an uninterrupted run does."""
    full = make(tmp_path / "full", max_steps=20)
    full.run()
    half = make(tmp_path / "half", max_steps=20)
    half.run(stop_step=10)                                     # checkpoint at step 10
    with open(tmp_path / "half" / "log.csv", "a", newline="") as f:
        csv.writer(f).writerows([[11, "1.0", "0.001", "2.0", "", "100"], [15, "1.0", "0.001", "2.0", "", "100"]])
    resumed = make(tmp_path / "half", max_steps=20)
    assert resumed.resume() == 10
    resumed.run()
    steps = [int(r["step"]) for r in csv.DictReader(open(tmp_path / "half" / "log.csv"))]
    assert steps == [int(r["step"]) for r in csv.DictReader(open(tmp_path / "full" / "log.csv"))]
    assert not (tmp_path / "half" / "log.csv.tmp").exists()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")        # overflow warnings are the point here
def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    t = make(tmp_path, max_steps=200)
    t.run(stop_step=5)                                         # a good checkpoint at step 5
    t.cfg.lr, t.cfg.warmup_steps = 1e6, 0                      # then a learning rate that blows up
    with pytest.raises(TrainingDiverged, match=r"(loss|validation loss) became (nan|inf) at step \d+"):
        t.run()
    meta, state, _ = load_checkpoint(tmp_path)                # the last good one still loads
    assert meta["step"] >= 5 and np.isfinite(meta["val_loss"])
    assert all(np.isfinite(v).all() for v in state.values())


def test_checkpoint_errors_name_the_file(tmp_path):
    t = make(tmp_path, max_steps=5)
    t.run()
    path = tmp_path / "ckpt.npz"
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])                   # truncated
    with pytest.raises(CheckpointError, match=r"ckpt.npz is truncated or corrupted"):
        load_checkpoint(tmp_path)
    corrupt = bytearray(good)
    corrupt[len(corrupt) // 3] ^= 0xFF                         # one flipped byte inside the weights
    path.write_bytes(bytes(corrupt))
    with pytest.raises(CheckpointError, match=r"truncated or corrupted"):
        load_checkpoint(tmp_path)
    path.write_bytes(good)
    with pytest.raises(CheckpointError, match=r"holds a 'gpt' model, expected 'bert'"):
        load_checkpoint(tmp_path, expected_kind="bert")
    with pytest.raises(CheckpointError, match=r"no checkpoint at"):
        load_checkpoint(tmp_path / "elsewhere")


def test_checkpoint_never_unpickles(tmp_path):
    np.savez(tmp_path / "ckpt.npz", __meta__=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(tmp_path)                              # allow_pickle=False refuses object arrays


def test_save_is_atomic_even_if_writing_fails(tmp_path, monkeypatch):
    t = make(tmp_path, max_steps=5)
    t.run()
    before = (tmp_path / "ckpt.npz").read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"half a checkpoint")
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, t.model, {"kind": "gpt"})
    assert (tmp_path / "ckpt.npz").read_bytes() == before      # the old checkpoint is untouched
    assert not list(tmp_path.glob(".ckpt.npz.tmp*"))           # and no temporary file is left behind


def test_a_signal_finishes_the_step_saves_and_the_resumed_run_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    """SIGINT arriving in the middle of step 7: the step completes, a checkpoint of step 7 is written,
    TrainingInterrupted says so, and resuming from it reproduces the uninterrupted losses exactly."""
    import os
    import signal
    from minillm.training.interrupt import TrainingInterrupted
    full = make(tmp_path / "full")
    full.run()
    cut = make(tmp_path / "cut")
    step = cut.train_step

    def step_with_a_signal():
        if cut.step == 6:
            os.kill(os.getpid(), signal.SIGINT)       # handled as a request: this step still finishes
        return step()
    monkeypatch.setattr(cut, "train_step", step_with_a_signal)
    with pytest.raises(TrainingInterrupted) as info:
        cut.run()
    assert info.value.step == 7 and load_checkpoint(tmp_path / "cut")[0]["step"] == 7
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler     # handlers restored
    minillm.manual_seed(99)
    resumed = make(tmp_path / "cut")
    assert resumed.resume() == 7
    resumed.run()
    assert [l for _, l in cut.history] + [l for _, l in resumed.history] == [l for _, l in full.history]
    assert resumed.last_val == full.last_val


def test_a_second_run_on_a_locked_folder_fails_naming_the_holder_and_a_stale_lock_is_replaced(tmp_path):
    import os
    import subprocess
    import sys
    from minillm.training.lock import FolderLock, FolderLocked
    with FolderLock(tmp_path):
        with pytest.raises(FolderLocked, match=f"being trained into by process {os.getpid()}"):
            make(tmp_path).run()
    assert not (tmp_path / ".lock").exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / ".lock").write_text(dead.stdout.strip())            # a process that has exited
    make(tmp_path, max_steps=5).run()
    assert load_checkpoint(tmp_path)[0]["step"] == 5 and not (tmp_path / ".lock").exists()
