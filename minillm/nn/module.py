"""Parameter and Module: the small object layer on top of forward/backward functions.

A ``Parameter`` is an array (``.data``) and the gradient of the loss with respect
to it (``.grad``, same shape). A ``Module`` holds parameters and sub-modules as
plain attributes, calls a layer's ``*_forward`` function, keeps its cache until
``backward``, and adds (``+=``) the parameter gradients the ``*_backward``
function returns into ``.grad``, as PyTorch does. There is no autograd: a model's
``backward`` calls its layers' ``backward`` in the reverse order of ``forward``.

Names follow PyTorch (``weight``, ``bias``, ``out_proj.weight``, ``h.0....``) so a
torch ``state_dict`` loads by name after converting tensors to arrays.
"""
import numpy as np

from .. import backend


class Parameter:
    """A trainable array and its gradient. data, grad: same shape and dtype."""

    def __init__(self, data):
        self.data = data
        self.grad = backend.get_array_module(data).zeros_like(data)

    @property
    def shape(self):
        """The shape of the parameter's data."""
        return self.data.shape

    def __repr__(self):
        return f"Parameter(shape={tuple(self.data.shape)}, dtype={self.data.dtype})"


class Module:
    """Base class: parameters, sub-modules, the forward cache, train/eval, state_dict."""

    training = True
    cache = None

    # ------------------------------------------------------------------ calling
    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        """Compute the output from the input and keep in self.cache what backward will need."""
        raise NotImplementedError

    def backward(self, *args, **kwargs):
        """Given dL/doutput, add each parameter's gradient into its .grad and return dL/dinput."""
        raise NotImplementedError

    def pop_cache(self):
        """Return the cache saved by forward and forget it (a backward uses it once)."""
        if self.cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() was called without a preceding forward() "
                "(or twice for one forward): call forward first, then backward once."
            )
        cache, self.cache = self.cache, None
        return cache

    @staticmethod
    def accumulate(param, grad):
        """param.grad += grad (gradients add up until zero_grad, as in PyTorch)."""
        if grad is not None:
            param.grad += grad

    # ------------------------------------------------------------------ traversal
    def named_children(self):
        """(name, module) for each direct sub-module, in the order they were assigned."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def named_modules(self, prefix=""):
        """(dotted name, module) for this module and every module below it."""
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self, prefix=""):
        """(dotted name, Parameter) for every parameter, each shared one only once."""
        seen = set()
        for mod_name, mod in self.named_modules(prefix):
            for name, value in vars(mod).items():
                if isinstance(value, Parameter) and id(value) not in seen:
                    seen.add(id(value))
                    yield (f"{mod_name}.{name}" if mod_name else name), value

    def parameters(self):
        """Every Parameter of this module and its sub-modules, each once, in definition order."""
        return [p for _, p in self.named_parameters()]

    def num_parameters(self):
        """Total number of parameter values (a shared parameter counts once)."""
        return int(sum(p.data.size for p in self.parameters()))

    def zero_grad(self):
        """Set every parameter's grad to 0. Backward passes add into .grad (a tied weight gets two
        shares), so call this before each backward."""
        for p in self.parameters():
            p.grad[...] = 0

    def train(self, mode=True):
        """Training mode (dropout active) for this module and every sub-module; returns self."""
        for _, m in self.named_modules():
            m.training = mode
        return self

    def eval(self):
        """Evaluation mode: dropout off (same as train(False))."""
        return self.train(False)

    # ------------------------------------------------------------------ moving
    def to(self, backend_name=None, dtype=None):
        """Move every parameter to a backend ("numpy"/"cupy") and/or cast it to ``dtype``.

        Gradients are reset to zeros on the new device/dtype. Returns self.
        """
        for _, p in self.named_parameters():
            data = p.data if backend_name is None else backend.to_device(p.data, backend_name)
            if dtype is not None:
                data = data.astype(dtype)
            p.data = data
            p.grad = backend.get_array_module(data).zeros_like(data)
        for _, m in self.named_modules():
            m.cache = None
            if hasattr(m, "_to_hook"):
                m._to_hook(backend_name, dtype)
        return self

    def double(self):
        """Cast every parameter to float64 (gradient checks)."""
        return self.to(dtype=np.float64)

    def float(self):
        """Cast every parameter to float32 (training)."""
        return self.to(dtype=np.float32)

    # ------------------------------------------------------------------ saving
    def state_dict(self):
        """{name: array copy} of every parameter, on the host (NumPy)."""
        return {name: backend.to_numpy(p.data).copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state, strict=True):
        """Copy arrays into parameters by name; shapes must match, dtypes are cast.

        Accepts NumPy/CuPy arrays or anything ``numpy.asarray`` understands (for a
        torch tensor: ``t.detach().numpy()``). With ``strict`` every parameter must
        be present and no extra key may be; the error lists all problems at once.
        """
        params = dict(self.named_parameters())
        missing = [k for k in params if k not in state]
        unexpected = [k for k in state if k not in params]
        mismatched, uncastable, values = [], [], {}
        for k, p in params.items():            # check and convert everything before changing anything
            if k not in state:
                continue
            value = backend.to_numpy(state[k]) if hasattr(state[k], "shape") else np.asarray(state[k])
            if tuple(value.shape) != tuple(p.data.shape):
                mismatched.append(f"{k}: expected {tuple(p.data.shape)}, got {tuple(value.shape)}")
            elif value.dtype.kind not in "biuf":
                uncastable.append(f"{k}: dtype {value.dtype} is not a number type")
            else:
                values[k] = value.astype(p.data.dtype, copy=False)
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:                  # a key from a file may hold anything: repr shows it on one line
            problems.append("unexpected keys: " + ", ".join(k if k.isprintable() and k.strip() == k else repr(k)
                                                             for k in map(str, unexpected)))
        if mismatched:
            problems.append("shape mismatch: " + "; ".join(mismatched))
        if uncastable:
            problems.append("cannot cast: " + "; ".join(uncastable))
        if problems:
            raise ValueError(f"{type(self).__name__}.load_state_dict: " + " | ".join(problems)
                             + " (no parameter was changed)")
        for k, value in values.items():
            xp = backend.get_array_module(params[k].data)
            params[k].data[...] = value if xp is np else xp.asarray(value)
        return self

    def extra_repr(self):
        """Extra text inside this module's repr, e.g. "in_features=4, out_features=8" (as torch)."""
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self.named_children():
            lines.append(f"  ({name}): " + repr(child).replace("\n", "\n  "))
        return "\n".join(lines) + ")" if len(lines) > 1 else lines[0] + ")"


class ModuleList(Module):
    """A list of modules whose parameters are named by index: ``h.0.weight``, ``h.1.weight``."""

    def __init__(self, modules=()):
        self._items = []
        for m in modules:
            self.append(m)

    def append(self, module):
        """Add a module; its parameters are named by its index."""
        setattr(self, str(len(self._items)), module)
        self._items.append(module)

    def __getitem__(self, i):
        return self._items[i]

    def __len__(self):
        return len(self._items)

    def __iter__(self):
        return iter(self._items)
