"""What a run produced, how it is saved (atomically) and how it is shown (table, CSV, JSON)."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forgetlab import config as cfg
from forgetlab.errors import ConfigError, ForgetlabError, require
from forgetlab.outputs.files import check_schema, read_json
from forgetlab.outputs.formatting import left_out, pm, point_label, seeds_phrase
from forgetlab.outputs.stats import sample

SCHEMA_VERSION = 1


@dataclass
class TaskRecord:
    classes: list[int]
    train_loss: list[float] = field(default_factory=list)  # per epoch: mean objective (CE + penalties)
    train_acc: list[float] = field(default_factory=list)  # per epoch, in training mode, over the epoch
    val_loss: list[float] = field(default_factory=list)  # cross-entropy on the seen classes' eval data
    val_acc: list[float] = field(default_factory=list)
    sparsity: list[list[float]] = field(default_factory=list)  # per epoch, one value per hidden layer
    sparsity_all: list[float] = field(default_factory=list)  # per epoch, all hidden units pooled


@dataclass
class MemberResult:
    seed: int
    hparams: dict[str, float]
    tasks: list[TaskRecord] = field(default_factory=list)
    acc_matrix: list[list[float]] = field(default_factory=list)  # R[t][k]: after task t, on task k
    acc_init: list[float] = field(default_factory=list)  # R0[k]: the untrained network on task k

    def metrics(self) -> dict[str, float]:
        """Average accuracy, forgetting, BWT and FWT of this member (metrics.summary of its accuracy matrix)."""
        from forgetlab.outputs.metrics import summary

        return summary(self.acc_matrix, self.acc_init)

    @property
    def group(self) -> tuple:
        """Members of one configuration (they differ only in seed)."""
        return tuple(sorted(self.hparams.items()))


@dataclass
class Results:
    config: cfg.RunConfig
    members: list[MemberResult]
    status: str = "complete"  # or "interrupted": only finished epochs are recorded
    elapsed_s: float = 0.0
    device: str = "cpu"
    run_dir: Path | None = None
    model: Any = field(default=None, repr=False, compare=False)  # the trained ensemble (not serialised)
    probes: Any = field(default=None, repr=False, compare=False)  # probes.ProbeData when recorded (own files)

    # --- views -------------------------------------------------------------------------------

    def rows(self) -> list[dict]:
        """One row per member, task and epoch: the tidy table behind the CSV."""
        out = []
        for i, m in enumerate(self.members):
            for t, task in enumerate(m.tasks):
                for e in range(len(task.train_loss)):
                    row = {
                        "member": i,
                        "seed": m.seed,
                        **{k.split(".")[-1]: v for k, v in m.hparams.items()},
                        "task": t + 1,
                        "classes": " ".join(map(str, task.classes)),
                        "epoch": e + 1,
                    }
                    for k in ("train_loss", "train_acc", "val_loss", "val_acc", "sparsity_all"):
                        row[k] = getattr(task, k)[e]
                    for layer, s in enumerate(task.sparsity[e], 1):
                        row[f"sparsity_h{layer}"] = s
                    out.append(row)
        return out

    def to_pandas(self):
        """``rows()`` as a pandas DataFrame (pandas is optional: ``pip install 'forgetlab[pandas]'``)."""
        pd = require("pandas", "pandas", "Results.to_pandas()")
        return pd.DataFrame(self.rows())

    def groups(self) -> dict[tuple, list[MemberResult]]:
        out: dict[tuple, list[MemberResult]] = {}
        for m in self.members:
            out.setdefault(m.group, []).append(m)
        return out

    def final_val_acc(self) -> dict[tuple, list[float]]:
        """Per configuration: each seed's validation accuracy at the end of the last finished task."""
        return {
            g: [m.tasks[-1].val_acc[-1] for m in ms if m.tasks and m.tasks[-1].val_acc]
            for g, ms in self.groups().items()
        }

    def table(self, last_epoch_only: bool = False) -> str:
        """The study's per-task, per-epoch table, mean ± sd over seeds, one block per configuration. A
        value that is not finite (a seed that diverged) is left out of its cell, marked *, and named
        under the block; one seed prints its values without a spread."""
        varied = {k for k, _ in self.config.grid}
        lines = []
        for group, ms in self.groups().items():
            title = point_label((k, v) for k, v in group if k in varied)
            lines += _block(f"{self.config.name} {title}".rstrip(), ms, last_epoch_only)
        return "\n".join(lines)

    def csv(self) -> str:
        return rows_to_csv(self.rows())

    # --- persistence -------------------------------------------------------------------------

    def to_json(self) -> dict:
        return {
            "schema": SCHEMA_VERSION,
            "status": self.status,
            "elapsed_s": round(self.elapsed_s, 3),
            "device": self.device,
            "config": cfg.to_dict(self.config),
            "members": [
                {
                    "seed": m.seed,
                    "hparams": m.hparams,
                    "acc_matrix": m.acc_matrix,
                    "acc_init": m.acc_init,
                    "tasks": [vars(t) for t in m.tasks],
                }
                for m in self.members
            ],
        }

    @classmethod
    def from_json(cls, data: dict, run_dir: Path | None = None) -> Results:
        members = [
            MemberResult(
                m["seed"], m["hparams"], [TaskRecord(**t) for t in m["tasks"]], m["acc_matrix"], m.get("acc_init", [])
            )
            for m in data["members"]
        ]
        return cls(cfg.from_dict(data["config"]), members, data["status"], data["elapsed_s"], data["device"], run_dir)

    def save(self, run_dir: Path) -> None:
        """Every file of this run into ``run_dir`` (``outputs.run_dir.write``): results.json last."""
        from forgetlab.outputs import run_dir as run_dir_mod

        run_dir_mod.write(Path(run_dir), self)


_TABLE_KEYS = {  # the table's columns: record field -> header
    "train_loss": "train loss",
    "train_acc": "train acc",
    "val_loss": "val loss",
    "val_acc": "val acc",
    "sparsity_all": "sparsity",
}


def _block(title: str, members: list[MemberResult], last_epoch_only: bool) -> list[str]:
    """One configuration's lines of ``Results.table``: a title naming the seeds, a header, a row per task
    and epoch, the note on values left out, and a blank line."""
    lines = [f"{title}  ({seeds_phrase(len(members))})"]
    lines.append(f"{'task':>4} {'classes':<9}{'ep':>3} " + " ".join(f"{h:>17}" for h in _TABLE_KEYS.values()))
    dropped: dict[tuple[int, str], str] = {}  # (seed, key) -> the first task and epoch left out
    for t, task in enumerate(members[0].tasks):
        n_ep = min(len(m.tasks[t].train_loss) for m in members if len(m.tasks) > t)
        for e in [n_ep - 1] if last_epoch_only and n_ep else range(n_ep):
            cells = []
            for key in _TABLE_KEYS:
                s = sample(getattr(m.tasks[t], key)[e] for m in members)
                cells.append(pm(s.mean, s.sd, 4) + "*" * bool(s.left_out))
                for i in s.left_out:
                    dropped.setdefault((members[i].seed, key), f"task {t + 1} epoch {e + 1}")
            classes = ",".join(map(str, task.classes))
            lines.append(f"{t + 1:>4} {classes:<9}{e + 1:>3} " + " ".join(f"{c:>17}" for c in cells))
    if dropped:
        lines.append("* " + left_out([(f"seed {s}", f"{_TABLE_KEYS[k]} from {w}") for (s, k), w in dropped.items()]))
    return lines + [""]


def rows_to_csv(rows: list[dict]) -> str:
    """A list of dicts as CSV text: every key any row has, in order of first appearance (a row without
    one, e.g. a network with fewer hidden layers in a sweep, leaves its cell empty)."""
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()


_RUN = "a run directory written by 'forgetlab run'"


def _check_member(m: Any) -> None:
    """Raise TypeError where a results.json member is not of the shape ``to_json`` writes."""
    if not isinstance(m, dict) or type(m.get("seed")) is not int or not isinstance(m.get("hparams"), dict):
        raise TypeError("a member needs an integer 'seed' and an 'hparams' object")
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in m["hparams"].values()):
        raise TypeError(f"member {m['seed']}: hparams must be finite numbers")
    if not isinstance(m.get("tasks"), list) or not all(isinstance(t, dict) for t in m["tasks"]):
        raise TypeError(f"member {m['seed']}: 'tasks' must be a list of objects")
    matrix = m.get("acc_matrix")
    if not isinstance(matrix, list) or not all(
        isinstance(r, list) and all(isinstance(v, (int, float)) for v in r) for r in matrix
    ):
        raise TypeError(f"member {m['seed']}: 'acc_matrix' must be a list of lists of numbers")
    for t in m["tasks"]:
        if any(not isinstance(v, list) for v in t.values()):
            raise TypeError(f"member {m['seed']}: every task field must be a list")


def load(run_dir: str | Path) -> Results:
    """A saved run; a missing, foreign, newer or damaged results.json is one ForgetlabError."""
    from forgetlab import strategies  # noqa: F401 - registers the strategy names (and settings) a saved config holds

    run_dir = Path(run_dir)
    path = run_dir / "results.json"
    if run_dir.is_file():
        raise ForgetlabError(f"{run_dir} is a file, not a directory; give {_RUN}")
    data = check_schema(read_json(path, _RUN), path, SCHEMA_VERSION, _RUN)
    try:
        if data.get("status") not in ("complete", "interrupted") or not isinstance(data.get("members"), list):
            raise TypeError("needs 'status' complete or interrupted and a 'members' list")
        for m in data["members"]:
            _check_member(m)
        res = Results.from_json(data, run_dir)
        cfg.validate(res.config)
        return res
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        detail = f"missing {e}" if isinstance(e, KeyError) else str(e)
        raise ForgetlabError(f"{path} is damaged or not a forgetlab run ({detail}); give {_RUN}") from None
    except ConfigError as e:
        raise ForgetlabError(f"{path} holds a config this forgetlab cannot read: {e}") from None
