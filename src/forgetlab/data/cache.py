"""The decoded-tensor cache: one torch file per raw data folder, mapped into memory by every later run.

It holds the decoded tensors and, for each raw file, its size, mtime and CRC-32. It lives beside the raw
folder, or under $XDG_CACHE_HOME/forgetlab when that folder is read-only (its permissions grant no
write: respected even by root, as for a shared CI copy). A file whose size differs makes the cache
stale; one whose mtime differs is checksummed and compared.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Callable
from pathlib import Path

import torch

CACHE_VERSION = 1


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


def _cache_valid(cache, raw: Path, files: tuple[str, ...]) -> bool:
    if (
        not isinstance(cache, dict)
        or cache.get("version") != CACHE_VERSION
        or set(cache.get("files", ())) != set(files)
    ):
        return False
    for fname, (size, mtime_ns, crc) in cache["files"].items():
        st = (raw / fname).stat()
        if st.st_size != size:
            return False
        if st.st_mtime_ns != mtime_ns and zlib.crc32((raw / fname).read_bytes()) != crc:
            return False
    return True


def load_cached(
    name: str, raw: Path, files: tuple[str, ...], decode: Callable[[], tuple[dict[str, torch.Tensor], dict[str, int]]]
) -> dict[str, torch.Tensor]:
    """The tensors decoded from the raw ``files`` in ``raw``: from the cache when it is fresh, else
    ``decode()`` (tensors, and each raw file's CRC-32), cached for next time."""
    for path in cache_paths(name, raw):
        try:  # mmap: the pages come from the OS file cache, shared by every process that loads them
            cache = torch.load(path, mmap=True, weights_only=True)
        except Exception:  # noqa: BLE001 - missing, truncated or foreign: rebuild it
            continue
        if _cache_valid(cache, raw, files):
            return cache["tensors"]
    tensors, crcs = decode()
    stamps = {f: [(raw / f).stat().st_size, (raw / f).stat().st_mtime_ns, c] for f, c in crcs.items()}
    for path in cache_paths(name, raw):
        if _writable(path.parent):
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            try:
                torch.save({"version": CACHE_VERSION, "files": stamps, "tensors": tensors}, tmp)
                os.replace(tmp, path)
                break
            except OSError:  # a full disk: train from the decoded tensors without a cache
                tmp.unlink(missing_ok=True)
    return tensors
