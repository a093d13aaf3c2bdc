"""The run cache: finished work on disk, found again by the identity of the config that made it.

    ROOT/members/<member id>.json   one finished ensemble member (a sweep's unit of reuse): its per-epoch
                                    metrics and accuracy matrix, written atomically
    ROOT/sweep.json                 a sweep's plan (sweep.spec), read back by load_spec
    ROOT/runs/<name>-<id>-<probes>/ one finished run with its probes (results.json + probes.npz), the
                                    unit ``forgetlab reproduce`` reuses

Files are written by rename only (results.atomic_write), so a file that parses is complete.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Iterable

from .errors import ForgetlabError
from .results import atomic_write

SCHEMA_VERSION = 1


class Store:
    """Finished members and finished runs under one root directory."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.members_dir = self.root / "members"

    # -- members: one JSON record each ------------------------------------------------------

    def path(self, member_id: str) -> Path:
        return self.members_dir / f"{member_id}.json"

    def get(self, member_id: str) -> dict | None:
        try:
            rec = json.loads(self.path(member_id).read_text())
        except (OSError, ValueError):
            return None
        ok = isinstance(rec, dict) and rec.get("schema") == SCHEMA_VERSION and rec.get("id") == member_id
        return rec if ok and rec.get("status") == "complete" else None

    def done(self, ids: Iterable[str]) -> set[str]:
        return {i for i in ids if self.get(i) is not None}

    def put(self, record: dict) -> None:
        atomic_write(self.path(record["id"]), json.dumps(record, indent=1))

    # -- runs: a run directory with results and probes ----------------------------------------

    def run_dir(self, name: str, config_identity: str, probe_config) -> Path:
        """Where the run of this config (by identity) with these probe settings lives."""
        digest = hashlib.sha256(json.dumps(asdict(probe_config), sort_keys=True).encode()).hexdigest()[:6]
        return self.root / "runs" / f"{name}-{config_identity[:12]}-{digest}"

    @staticmethod
    def run_complete(run_dir: Path) -> bool:
        """A run directory whose training finished and whose probes were saved."""
        try:
            ok = json.loads((run_dir / "results.json").read_text()).get("status") == "complete"
        except (OSError, ValueError):
            return False
        return ok and (run_dir / "probes.json").exists()


def load_spec(out: str | Path) -> dict:
    """The sweep plan recorded in ``out/sweep.json``."""
    path = Path(out) / "sweep.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ForgetlabError(f"{path} does not exist; give a directory written by 'forgetlab sweep'") from None
    except ValueError:
        raise ForgetlabError(f"{path} is not valid JSON; was it written by 'forgetlab sweep'?") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA_VERSION:
        raise ForgetlabError(f"{path} is not a forgetlab sweep file (schema {SCHEMA_VERSION})")
    return data
