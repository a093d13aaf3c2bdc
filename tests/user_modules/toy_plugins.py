"""A plug-in file for tests/test_plugins.py, imported with --plugin: a dataset and a preset that trains on it."""

import torch

from forgetlab import data
from forgetlab.config import presets


@data.register("toy-clusters")
def toy_clusters(root, **options):
    """Ten Gaussian clusters in 784-d, the same on every call (a worker process rebuilds them)."""
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(10, 784, generator=g) * 0.5

    def split(n):
        y = torch.arange(10).repeat_interleave(n)
        return centres[y] + torch.randn(len(y), 784, generator=g), y

    (x, y), (xt, yt) = split(30), split(10)
    return data.from_arrays(x, y, xt, yt, name="toy-clusters", **options)


presets.add(
    "toy-sequential",
    "two tasks of the toy clusters, one short epoch each",
    data={"dataset": "toy-clusters"},
    protocol={"tasks": [[0, 1], [2, 3]]},
    train={"epochs": 1, "batch_size": 20},
)
