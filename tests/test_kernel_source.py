"""The CUDA source compiles with nvcc (all templates instantiated), so a syntax error never lands.

Skipped where nvcc is missing. The kernels themselves are tested on a GPU in test_fused_attention_gpu.py.
"""
import shutil
import subprocess
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "kernels" / "cuda" / "fused_attention.cu"


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
def test_kernel_compiles_with_nvcc(tmp_path):
    out = subprocess.run(["nvcc", "-std=c++17", "-arch=sm_80", "-DMINILLM_INSTANTIATE", "-Xptxas", "-v",
                          "-c", str(SOURCE), "-o", str(tmp_path / "fa.o")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "fa.o").stat().st_size > 0
    for kernel in ("attn_fwd", "attn_bwd_dkdv", "attn_bwd_dq"):
        assert kernel in out.stderr                            # ptxas reported every kernel


def test_shared_memory_plan_fits_an_sm():
    """Every kernel's shared memory stays under the 227 KB an H100/A100-class SM allows a block."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("k", SOURCE.with_name("__init__.py"))
    k = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(k)
    for kind in ("fwd", "dkdv", "dq"):
        for D in (32, 64, 128):
            assert k.shared_bytes(kind, D) <= 227 * 1024, (kind, D)
    assert [k.padded_dim(d) for d in (1, 32, 33, 64, 65, 128)] == [32, 32, 64, 64, 128, 128]
