"""Shared fixtures: backends, float64 defaults, the gpu marker.

Tests marked ``gpu`` run only where CuPy imports and sees a GPU; elsewhere they are
skipped with the reason. ``xp_backend`` parametrizes a test over NumPy and CuPy.
"""
import numpy as np
import pytest

import minillm
from minillm import backend

HAS_GPU = backend.cupy_available()


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs CuPy and a CUDA GPU (skipped otherwise)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="needs CuPy and a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords and not HAS_GPU:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fresh_state():
    """Every test starts on NumPy with the same seed, and leaves the backend as it found it."""
    minillm.use("numpy")
    minillm.manual_seed(0)
    yield
    minillm.use("numpy")


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def xp_backend(request):
    """Run the test on each backend; returns the array module."""
    xp = minillm.use(request.param)
    minillm.manual_seed(0)
    return xp


@pytest.fixture
def rng():
    return np.random.default_rng(0)
