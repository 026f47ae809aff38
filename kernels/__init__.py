"""The engine: the lesson's math made fast, installed as ``minillm.kernels``.

    dispatch.py   which implementation runs for each call, and the record of that choice
    cpu/          NumPy fast paths and Numba-compiled loops: the same formulas, made fast
    cuda/         CUDA RawKernels (fused attention), compiled by CuPy at first use

Every implementation here has a twin in ``minillm/nn/`` (the lesson) and a test that the two
agree (tests/test_kernels.py). ``MINILLM_KERNELS=plain`` runs the lesson everywhere.
"""
