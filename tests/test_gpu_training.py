"""GPT training on CuPy (through the fused kernel) follows the NumPy run step for step (needs a GPU)."""
import numpy as np
import pytest

import minillm
from minillm import backend
from minillm.models import GPT, GPTConfig
from minillm.nn import CrossEntropyLoss
from minillm.kernels import dispatch
from minillm.training.optim import AdamW, clip_grad_norm, param_groups

pytestmark = pytest.mark.gpu


def _losses(backend_name, steps=20):
    minillm.use(backend_name)
    minillm.manual_seed(0)                      # same initial weights: drawn on the CPU, then copied
    model = GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=2, n_head=4, n_embd=64))
    opt = AdamW(param_groups(model, 0.1), lr=1e-3)
    loss_fn = CrossEntropyLoss()
    rng = np.random.default_rng(0)
    stream = np.random.default_rng(1).integers(0, 65, 20000)
    paths, losses = set(), []
    for _ in range(steps):
        starts = rng.integers(0, len(stream) - 65, 8)
        x = backend.to_device(np.stack([stream[s:s + 64] for s in starts]))
        y = backend.to_device(np.stack([stream[s + 1:s + 65] for s in starts]))
        losses.append(float(loss_fn(model(x), y)))
        paths.add(dispatch.last("scaled_dot_product_attention").implementation)
        model.zero_grad()
        model.backward(loss_fn.backward())
        clip_grad_norm(model.parameters(), 1.0)
        opt.step()
    return losses, paths


def test_gpt_training_on_cupy_matches_numpy():
    cpu, cpu_paths = _losses("numpy")
    gpu, gpu_paths = _losses("cupy")
    assert cpu_paths == {"cpu.attention"} and gpu_paths == {"cuda.attention"}
    diffs = np.abs(np.array(cpu) - np.array(gpu))
    assert diffs.max() <= 1e-3, f"largest loss difference {diffs.max():.2e} at step {diffs.argmax()}"
    assert gpu[-1] < gpu[0]
