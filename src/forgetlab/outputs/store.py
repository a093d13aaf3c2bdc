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
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

from forgetlab import config as cfg
from forgetlab.errors import ForgetlabError
from forgetlab.outputs.files import atomic_write, check_schema, read_json

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
    """The sweep plan recorded in ``out/sweep.json``, its base config and axis values checked as when the
    sweep was planned: a missing, foreign, newer or damaged file is one ForgetlabError."""
    from forgetlab import strategies  # noqa: F401 - registers the strategy names (and settings) a saved config holds

    path, what = Path(out) / "sweep.json", "a directory written by 'forgetlab sweep'"
    data = check_schema(read_json(path, what), path, SCHEMA_VERSION, what)
    if not all(
        isinstance(data.get(k), t) for k, t in (("base", dict), ("axes", list), ("seeds", list), ("members", list))
    ):
        raise ForgetlabError(f"{path} is damaged (needs 'base', 'axes', 'seeds' and 'members'); give {what}")
    try:
        base = cfg.validate(cfg.from_dict(data["base"]))
        for key, values in data["axes"]:
            for v in values:
                cfg.override(base, key, v)
    except (TypeError, ValueError):
        raise ForgetlabError(f"{path} is damaged ('axes' must be [key, [values]] pairs); give {what}") from None
    except ForgetlabError as e:
        raise ForgetlabError(f"{path} cannot be read back: {e}") from None
    return data
