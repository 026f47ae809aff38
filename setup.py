"""Install minillm.

    pip install -e .            # NumPy backend (CPU), with Numba for the compiled CPU kernels
    pip install -e ".[test]"    # + pytest, hypothesis for the test suite
    pip install -e ".[gpu]"     # + CuPy for the GPU backend and fused kernel
    pip install -e ".[hf]"      # + safetensors, to load and save Hugging Face GPT-2 / BERT directories

The CUDA source lives in the top-level ``kernels/`` folder (so it reads as its
own part of the project) and is installed as the subpackage ``minillm.kernels``.
"""
from setuptools import setup

setup(
    name="minillm",
    version="0.1.0",
    description="Language models from first principles: every backward pass written by hand.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=["minillm", "minillm.nn", "minillm.models", "minillm.tokenizers", "minillm.training", "minillm.gradcheck",
              "minillm.cli", "minillm.exercises", "minillm.kernels", "minillm.kernels.cpu", "minillm.kernels.cuda"],
    package_dir={"minillm.kernels": "kernels"},
    package_data={"minillm.kernels.cuda": ["*.cu"]},
    # Numba compiles the engine's CPU kernels (kernels/cpu/fused_*.py, flash_attention.py). It is
    # asked for only where it publishes wheels (no compiler needed); elsewhere the NumPy kernels
    # and the lesson code run, and `minillm train` says so in one line.
    install_requires=["numpy>=1.23", "matplotlib>=3.5", "threadpoolctl>=3.1",
                      "numba>=0.57; python_version < '3.15' and platform_machine in "
                      "'x86_64 AMD64 aarch64 arm64'"],
    extras_require={
        "gpu": ["cupy-cuda12x"],
        "hf": ["safetensors>=0.4", "regex"],       # minillm.hub: load_gpt2 / save_gpt2, load_bert / save_bert (Hugging Face format)
        # data parallelism over processes (minillm/training/distributed.py): mpi4py and an MPI runtime
        # from PyPI's wheels (MPICH on Linux and macOS; on Windows install Microsoft MPI)
        "mpi": ["mpi4py>=3.1", "mpich; sys_platform != 'win32'"],
        "docs": ["mkdocs>=1.6", "mkdocs-material>=9.5", "mkdocstrings[python]>=0.26"],
        "test": ["pytest>=7", "hypothesis>=6", "nbformat>=5", "nbclient>=0.7", "ipykernel>=6", "safetensors>=0.4", "regex"],
    },
    entry_points={"console_scripts": ["minillm = minillm.cli:main"]},
)
