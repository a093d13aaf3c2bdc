"""The decoded-tensor cache: one torch file per raw data folder, mapped into memory by every later run.

It holds the decoded tensors and the key they were decoded under: the cache layout's version, forgetlab's
version, the decoding's own constants (the normalisation's mean and std) and, for each raw file, its size
and CRC-32. It lives beside the raw folder, or under $XDG_CACHE_HOME/forgetlab when that folder is
read-only (its permissions grant no write: respected even by root, as for a shared CI copy).

The raw files are checksummed on every load, not trusted by size and mtime: ``cp -p``, ``rsync -a`` and
``tar x`` keep mtimes, and MNIST and Fashion-MNIST files have identical sizes, so a replaced file can
look unchanged. The CRC costs a small part of a decode (``benchmarks/cache_check.py``).
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Callable
from pathlib import Path

import torch

from forgetlab import __version__

CACHE_VERSION = 1  # of the cache's layout: a cache of another version is decoded again


def cache_paths(name: str, raw: Path) -> list[Path]:
    """Where the cache of ``raw`` may live, first choice first."""
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "forgetlab"
    key = hashlib.sha1(str(raw.resolve()).encode()).hexdigest()[:12]
    return [raw.parent / f"forgetlab-{name}-v{CACHE_VERSION}.pt", home / f"{name}-{key}-v{CACHE_VERSION}.pt"]


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return os.access(folder, os.W_OK) and bool(folder.stat().st_mode & 0o222)
    except OSError:
        return False


def _key(raw: Path, crcs: dict[str, int], constants: tuple) -> dict:
    """What the cached tensors depend on: the versions, the decoding's constants, each raw file's size
    and CRC-32."""
    return {
        "version": CACHE_VERSION,
        "forgetlab": __version__,
        "constants": list(constants),
        "files": {f: [(raw / f).stat().st_size, crc] for f, crc in sorted(crcs.items())},
    }


def crc32(path: Path) -> int:
    """The CRC-32 of a file, read in 1 MiB chunks into one buffer (half the time of reading it whole: no
    file-sized allocation)."""
    crc, buf = 0, bytearray(1 << 20)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            crc = zlib.crc32(view[:n], crc)
    return crc


def _cache_valid(cache, raw: Path, files: tuple[str, ...], constants: tuple) -> bool:
    """The cache was decoded from these very bytes (each raw file's CRC-32, computed now) under the same
    versions and constants."""
    key = cache.get("key") if isinstance(cache, dict) else None
    if not isinstance(key, dict) or not isinstance(key.get("files"), dict) or set(key["files"]) != set(files):
        return False
    return key == _key(raw, {f: crc32(raw / f) for f in files}, constants)


def load_cached(
    name: str,
    raw: Path,
    files: tuple[str, ...],
    decode: Callable[[], tuple[dict[str, torch.Tensor], dict[str, int]]],
    constants: tuple = (),
) -> dict[str, torch.Tensor]:
    """The tensors decoded from the raw ``files`` in ``raw``: from the cache when it is fresh (same bytes,
    versions and ``constants``: the numbers the decoding bakes into the tensors), else ``decode()``
    (tensors, and each raw file's CRC-32), cached for next time."""
    for path in cache_paths(name, raw):
        try:  # mmap: the pages come from the OS file cache, shared by every process that loads them
            cache = torch.load(path, mmap=True, weights_only=True)
        except Exception:  # noqa: BLE001 - missing, truncated or foreign: rebuild it
            continue
        if _cache_valid(cache, raw, files, constants):
            return cache["tensors"]
    tensors, crcs = decode()
    key = _key(raw, crcs, constants)
    for path in cache_paths(name, raw):
        if _writable(path.parent):
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            try:
                torch.save({"key": key, "tensors": tensors}, tmp)
                os.replace(tmp, path)
                break
            except OSError:  # a full disk: train from the decoded tensors without a cache
                tmp.unlink(missing_ok=True)
    return tensors
