"""minillm: language models from first principles, every backward pass written by hand.

    import minillm
    minillm.use("cupy")          # optional: GPU backend (default "numpy")
    minillm.manual_seed(0)
"""
from . import backend, nn
from .backend import get_array_module, manual_seed, to_device, to_numpy, use

__version__ = "0.1.0"
__all__ = ["backend", "nn", "use", "manual_seed", "get_array_module", "to_numpy", "to_device", "__version__"]
