"""Shared fixtures: a tiny synthetic dataset for fast unit tests, and the real MNIST for the slow checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from forgetlab.data import Dataset, Split

ROOT = Path(__file__).resolve().parents[1]
# One thread: the unit tests use tiny tensors, and on a busy shared machine two OpenMP threads spin-wait
# and run many times slower. FORGETLAB_TEST_THREADS=2 gives the real-MNIST tests both cores of an idle machine.
torch.set_num_threads(1)


def _mnist_dir() -> Path | None:
    for cand in (os.environ.get("FORGETLAB_DATA"), ROOT.parent / "shared" / "data"):
        if cand and (Path(cand) / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
            return Path(cand)
    return None


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    torch.set_num_threads(int(os.environ.get("FORGETLAB_TEST_THREADS", "1")))
    path = _mnist_dir()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("real MNIST is required in CI: set FORGETLAB_DATA or put ../shared/data beside the repo")
        pytest.skip("real MNIST not found (FORGETLAB_DATA or ../shared/data)")
    return path


def synthetic(n_per_class: int = 40, n_eval: int = 20, seed: int = 0) -> Dataset:
    """Ten Gaussian clusters in 784-d: learnable in a few steps, so tests can assert real learning."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(10, 784, generator=g) * 0.5

    def split(n: int) -> Split:
        y = torch.arange(10).repeat_interleave(n)
        x = centres[y] + torch.randn(len(y), 784, generator=g)
        return Split(x, y)

    return Dataset("synthetic", split(n_per_class), split(n_eval), "test")


# FORGETLAB_DEVICE=cuda (benchmarks/device_check.sh) runs the unit tests' toy data on the GPU as well
TEST_DEVICE = os.environ.get("FORGETLAB_DEVICE", "cpu")


@pytest.fixture
def toy() -> Dataset:
    d = synthetic()
    if TEST_DEVICE == "cpu":
        return d
    return Dataset(d.name, *(Split(s.x.to(TEST_DEVICE), s.y.to(TEST_DEVICE)) for s in (d.train, d.eval)), d.eval_split)
