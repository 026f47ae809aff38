"""minillm: language models from first principles, every backward pass written by hand.

    import minillm
    minillm.use("cupy")          # optional: GPU backend (default "numpy")
    minillm.manual_seed(0)

The package is layered; each layer imports only the ones below it:
    cli/ -> training/, gradcheck/, hub.py -> models/ -> nn/ -> backend.py
    nn/ asks kernels/ (the engine, installed as minillm.kernels) whether a fast version applies.
"""
import os
import sys
from pathlib import Path

# The engine runs threads of its own beside OpenBLAS's (kernels/cpu/lstm_parallel.py, DataParallel,
# flash attention's shards). After each product OpenBLAS's idle threads spin 2^28 cycles (about
# 0.1 s) by default, taking a core from them; 2^20 (under a millisecond) keeps them ready between
# the products of a step and out of the way after. OpenBLAS reads the variable when NumPy loads
# it, so it is set only while NumPy is not loaded yet, and a value the user set wins.
if "numpy" not in sys.modules:
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")

# In a source checkout used without installing (PYTHONPATH=.), minillm.kernels is the top-level
# kernels/ folder: setup.py installs it under minillm, and this makes the checkout see it the same way.
_CHECKOUT = Path(__file__).resolve().parent.parent
if (_CHECKOUT / "kernels" / "dispatch.py").is_file() and (_CHECKOUT / "setup.py").is_file():
    __path__.append(str(_CHECKOUT))

from . import backend, nn  # noqa: E402
from .backend import get_array_module, manual_seed, to_device, to_numpy, use  # noqa: E402
from .kernels.cpu.malloc import keep_freed_memory  # noqa: E402

keep_freed_memory()

__version__ = "0.1.0"
__all__ = ["backend", "nn", "use", "manual_seed", "get_array_module", "to_numpy", "to_device", "__version__"]
