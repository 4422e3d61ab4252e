"""cynet's benchmarks against PyTorch on the CPU, run from the repository root:

    python -m benchmarks.kernels --markdown    # 6 conv + 3 pool layers, fwd and fwd+bwd
    python -m benchmarks.training --markdown   # LeNet-5 and simple.json epochs, RSS, import
    python -m benchmarks.fashion --markdown    # full Fashion-MNIST accuracy (about an hour)

``common`` holds the shared helpers (timing, run facts, report output), ``torch_twin``
the ``torch.nn`` twin of a cynet definition (also used by tests/test_torch_twin.py).
Importing this package imports neither numpy, cynet nor torch.
"""
