"""The one home of file writing and reading: atomic writes (a file that exists is complete), writable
folders proven before work starts (and removed again, when empty, if the work fails), and JSON files read
back with one-line errors."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from forgetlab.errors import ForgetlabError


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write to a temporary file beside ``path``, then rename: readers see all or nothing.

    Every file forgetlab writes goes through here. A failed write (a full disk, no permission, a folder
    that cannot be made) leaves no partial file and raises one ForgetlabError naming the path."""
    path = Path(path)
    mode = "wb" if isinstance(data, bytes) else "w"
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, mode) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise ForgetlabError(
            f"cannot write {path} ({e.strerror or type(e).__name__}); free some space or choose another output folder"
        ) from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


def writable_dir(path: Path, option: str = "--out") -> Path:
    """``path`` created if needed and proven writable (a test file written and removed), before any work
    whose results would go there; else one ForgetlabError naming the folder and ``option``."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise ForgetlabError(
            f"cannot write to output directory {path} ({e.strerror}); choose another with {option}"
        ) from None
    return path


def _prune(folder: Path) -> bool:
    """Remove ``folder`` and every folder under it that holds no file; whether ``folder`` itself went."""
    for top, _, _ in sorted(os.walk(folder), key=lambda w: -len(Path(w[0]).parts)):  # deepest first
        try:
            os.rmdir(top)
        except OSError:  # holds a file (or is not ours to remove)
            pass
    return not folder.exists()


@contextmanager
def nothing_left_on_error(folder: str | Path) -> Iterator[None]:
    """If the block raises, the folders it made are removed again where they hold no file: ``folder`` and
    its parents when the block created them, and folders it created directly inside ``folder`` (a download's
    ``MNIST/raw``). A failed command leaves no empty folders behind; files are never removed here (every
    write is atomic: none is left half-written)."""
    folder = Path(folder)
    new = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    inside = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    try:
        yield
    except BaseException:
        if folder.is_dir():
            for p in folder.iterdir():
                if p.name not in inside and p.is_dir() and not p.is_symlink():
                    _prune(p)
        for p in new:
            if not p.is_dir() or not _prune(p):
                break
        raise


def read_json(path: Path, what: str) -> Any:
    """The parsed JSON file at ``path``; each way it can be missing or unreadable is one ForgetlabError.

    ``what`` says what the user should give instead, e.g. "a run directory written by 'forgetlab run'".
    """
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        if path.parent.is_file():
            raise ForgetlabError(f"{path.parent} is a file, not a directory; give {what}") from None
        raise ForgetlabError(f"{path} does not exist; give {what}") from None
    except NotADirectoryError:
        raise ForgetlabError(f"{path.parent} is a file, not a directory; give {what}") from None
    except OSError as e:
        raise ForgetlabError(f"cannot read {path} ({e.strerror}); give {what}") from None
    except ValueError:  # JSONDecodeError and UnicodeDecodeError: empty, truncated or binary
        raise ForgetlabError(
            f"{path} is not valid JSON (empty, truncated or another tool's file); give {what}"
        ) from None


def check_schema(data: Any, path: Path, version: int, what: str) -> dict:
    """``data`` as a dict of schema ``version``; a newer schema asks for a newer forgetlab."""
    schema = data.get("schema") if isinstance(data, dict) else None
    if type(schema) is not int:
        raise ForgetlabError(f"{path} is not a forgetlab file (no integer 'schema'); give {what}")
    if schema > version:
        raise ForgetlabError(
            f"{path} has schema {schema}, newer than this forgetlab reads ({version}); upgrade forgetlab to read it"
        )
    if schema != version:
        raise ForgetlabError(f"{path} has schema {schema}; this forgetlab reads schema {version} only")
    return data
