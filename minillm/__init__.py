"""minillm: language models from first principles, every backward pass written by hand.

    import minillm
    minillm.use("cupy")          # optional: GPU backend (default "numpy")
    minillm.manual_seed(0)

The package is layered; each layer imports only the ones below it:
    cli/ -> training/, gradcheck/, hub.py -> models/ -> nn/ -> backend.py
    nn/ asks kernels/ (the engine, installed as minillm.kernels) whether a fast version applies.
"""
from pathlib import Path

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
