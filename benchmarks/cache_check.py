"""What the decoded-data cache's content check costs: the CRC-32 of the raw files (``cache.crc32``, computed
on every load) beside a decode of them and beside a load from the cache, side by side in one process.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/cache_check.py ../shared/data [mnist|fashion-mnist]

The raw folder may be read-only: the cache then lives under $XDG_CACHE_HOME/forgetlab (a temporary folder
here, removed afterwards). Times are medians of 5; the first read warms the OS file cache.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


def median_s(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(root: str, name: str = "mnist") -> None:
    torch.set_num_threads(1)
    from forgetlab.data import builtin, cache

    raw = Path(root) / builtin._DATASETS[name][1] / "raw"
    with tempfile.TemporaryDirectory() as home:
        os.environ["XDG_CACHE_HOME"] = home
        builtin.load(name, root, download=False)  # writes the cache (beside raw, or under home)
        crc = median_s(lambda: [cache.crc32(raw / f) for f in builtin._FILES])
        decode = median_s(lambda: builtin._decode(name, raw))
        cached = median_s(lambda: builtin.load(name, root, download=False))
    size = sum((raw / f).stat().st_size for f in builtin._FILES) / 1e6
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "")
    print(f"{name}: {size:.1f} MB of raw files; CPU {cpu or platform.processor()}, load {os.getloadavg()[0]:.2f}")
    print(f"CRC-32 of the raw files  {crc * 1e3:7.1f} ms")
    print(f"decode (no cache)        {decode * 1e3:7.1f} ms   CRC / decode = {crc / decode:.2f}")
    print(f"load from the cache      {cached * 1e3:7.1f} ms   (the CRC included)")


if __name__ == "__main__":
    main(*sys.argv[1:])
