"""The backend switch: NumPy default, the env var, a clear message when CuPy is missing."""
import subprocess
import sys

import numpy as np
import pytest

import minillm
from minillm import backend


def test_numpy_is_default():
    assert backend.current() == "numpy"
    assert backend.xp() is np


def test_unknown_backend():
    with pytest.raises(ValueError, match=r'backend must be "numpy" or "cupy", got \'jax\''):
        minillm.use("jax")


def test_missing_cupy_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)               # makes "import cupy" fail
    with pytest.raises(RuntimeError, match=r'pip install "minillm\[gpu\]"'):
        minillm.use("cupy")
    assert backend.current() == "numpy"


def test_env_var_selects_backend():
    code = "import minillm; print(minillm.backend.current())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__("os").environ, "MINILLM_BACKEND": "numpy"})
    assert out.stdout.strip() == "numpy"
    bad = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__("os").environ, "MINILLM_BACKEND": "tpu"})
    assert bad.returncode != 0 and "MINILLM_BACKEND='tpu': backend must be" in bad.stderr
    # read when used, not at import: importing works, and the command line reports it in one line
    imported = subprocess.run([sys.executable, "-c", "import minillm.models, minillm.cli"], capture_output=True,
                              text=True, env={**__import__("os").environ, "MINILLM_BACKEND": "tpu"})
    assert imported.returncode == 0, imported.stderr
    cli = subprocess.run([sys.executable, "-m", "minillm.cli", "gradcheck"], capture_output=True, text=True,
                         env={**__import__("os").environ, "MINILLM_BACKEND": "tpu"})
    assert cli.returncode == 1 and cli.stderr.startswith("minillm: error: MINILLM_BACKEND='tpu': backend must be")
    assert cli.stderr.count("\n") == 1


def test_array_helpers():
    a = np.arange(3)
    assert backend.get_array_module(a) is np
    assert backend.to_numpy(a) is a or np.array_equal(backend.to_numpy(a), a)
    assert backend.to_device(a, "numpy") is a or np.array_equal(backend.to_device(a, "numpy"), a)


@pytest.mark.gpu
def test_module_moves_between_backends():
    from minillm import nn
    m = nn.Linear(3, 2)
    x = np.ones((1, 3), np.float32)
    y_cpu = m(x)
    m.to("cupy")
    y_gpu = m(backend.to_device(x, "cupy"))
    np.testing.assert_allclose(backend.to_numpy(y_gpu), y_cpu, rtol=1e-6)
    with pytest.raises(TypeError, match="parameters are on cupy"):
        m(x)
