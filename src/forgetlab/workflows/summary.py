"""A sweep's numbers: tidy tables, mean / std / 95% confidence interval over seeds, and plots.

Every number derives from what each member recorded (its per-epoch metrics and its accuracy matrix
R[t][k], accuracy on task k after training task t):

    final_val_acc    validation accuracy on every seen class after the last epoch of the last task
    final_val_loss   its cross-entropy
    final_sparsity   population sparsity of the hidden units (fraction of exact zeros) at the end
    avg_acc          mean over tasks k of R[T-1][k]
    forgetting       metrics.average_forgetting: mean over k < T-1 of max_{k <= t < T-1} R[t][k] - R[T-1][k]
    bwt              metrics.backward_transfer: mean over k < T-1 of R[T-1][k] - R[k][k]   (NaN for one task)
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from forgetlab.errors import ForgetlabError
from forgetlab.outputs.files import atomic_write
from forgetlab.outputs.formatting import left_out, number, pm, point_label, value
from forgetlab.outputs.metrics import average_forgetting, backward_transfer, task_forgetting
from forgetlab.outputs.plotting import pyplot, save
from forgetlab.outputs.results import rows_to_csv
from forgetlab.outputs.stats import LEVEL, mean_interval, sample
from forgetlab.outputs.store import Store, load_spec

# ---------------------------------------------------------------------------------------------
# Per-member metrics
# ---------------------------------------------------------------------------------------------


def _bwt(R: list[list[float]]) -> float:
    return backward_transfer(R) if len(R) > 1 else math.nan


METRICS: dict[str, Callable[[dict], float]] = {
    "final_val_acc": lambda r: r["tasks"][-1]["val_acc"][-1],
    "final_val_loss": lambda r: r["tasks"][-1]["val_loss"][-1],
    "final_train_loss": lambda r: r["tasks"][-1]["train_loss"][-1],
    "final_sparsity": lambda r: r["tasks"][-1]["sparsity_all"][-1],
    "avg_acc": lambda r: statistics.fmean(r["acc_matrix"][-1]),
    "forgetting": lambda r: average_forgetting(r["acc_matrix"]),
    "bwt": lambda r: _bwt(r["acc_matrix"]),
}
DEFAULT_METRICS = ("final_val_acc", "final_sparsity", "forgetting")

# ---------------------------------------------------------------------------------------------
# Tidy tables: one row per member (x task (x epoch))
# ---------------------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    """Swept values as table cells: tuples (hidden sizes, tasks) as compact JSON text."""
    return json.dumps(value, separators=(",", ":")) if isinstance(value, list) else value


def _head(m: dict) -> dict:
    return {"id": m["id"], **{k: _cell(v) for k, v in m["point"].items()}, "seed": m["seed"]}


def member_rows(members: Sequence[dict], records: dict[str, dict]) -> list[dict]:
    return [{**_head(m), **{k: f(records[m["id"]]) for k, f in METRICS.items()}} for m in members if m["id"] in records]


def task_rows(members: Sequence[dict], records: dict[str, dict]) -> list[dict]:
    """Per member and task: the task's last epoch, and its accuracy right after it and at the end."""
    out = []
    for m in members:
        rec = records.get(m["id"])
        if rec is None:
            continue
        R, T = rec["acc_matrix"], len(rec["acc_matrix"])
        for t, task in enumerate(rec["tasks"]):
            out.append(
                {
                    **_head(m),
                    "task": t + 1,
                    "classes": " ".join(map(str, task["classes"])),
                    "train_loss": task["train_loss"][-1],
                    "train_acc": task["train_acc"][-1],
                    "val_loss": task["val_loss"][-1],
                    "val_acc": task["val_acc"][-1],
                    "sparsity": task["sparsity_all"][-1],
                    "acc_after_task": R[t][t],
                    "acc_final": R[T - 1][t],
                    "forgetting": task_forgetting(R, t) if t < T - 1 else None,
                }
            )
    return out


def epoch_rows(members: Sequence[dict], records: dict[str, dict]) -> list[dict]:
    out = []
    for m in members:
        rec = records.get(m["id"])
        for t, task in enumerate(rec["tasks"] if rec else []):
            for e in range(len(task["train_loss"])):
                row = {**_head(m), "task": t + 1, "epoch": e + 1}
                for k in ("train_loss", "train_acc", "val_loss", "val_acc", "sparsity_all"):
                    row[k] = task[k][e]
                row.update({f"sparsity_h{i}": s for i, s in enumerate(task["sparsity"][e], 1)})
                out.append(row)
    return out


PARQUET_NOTE = "note: no .parquet tables beside the .csv ones: pip install 'forgetlab[parquet]' for them"


def parquet_available() -> bool:
    """Whether pyarrow is importable (optional: the .csv tables are always written, the .parquet ones with it)."""
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def _parquet(rows: list[dict]) -> bytes | None:
    if not parquet_available():
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    return buf.getvalue().to_pybytes()


def write_tables(out: Path, members: Sequence[dict], store) -> dict[str, dict]:
    """members.csv, tasks.csv, epochs.csv (and .parquet when pyarrow is importable) of the stored members."""
    records = {m["id"]: r for m in members if (r := store.get(m["id"])) is not None}
    for name, rows in (
        ("members", member_rows(members, records)),
        ("tasks", task_rows(members, records)),
        ("epochs", epoch_rows(members, records)),
    ):
        atomic_write(out / f"{name}.csv", rows_to_csv(rows))
        if rows and (data := _parquet(rows)) is not None:
            atomic_write(out / f"{name}.parquet", data)
    return records


# ---------------------------------------------------------------------------------------------
# Statistics over seeds
# ---------------------------------------------------------------------------------------------


def describe(values: Sequence[float], level: float = LEVEL) -> dict:
    """n of the finite values, their mean, sample sd (n - 1) and the t-interval of the mean
    (``stats.mean_interval``); ``left_out``: the positions of values left out as not finite (among finite ones)."""
    s = sample(values)
    ci = mean_interval(values, level)
    return {"n": s.n, "mean": s.mean, "std": s.sd, "ci_low": ci.low, "ci_high": ci.high, "left_out": s.left_out}


def config_stats(rows: list[dict], keys: Sequence[str], metrics: Sequence[str]) -> list[dict]:
    """One entry per configuration (the swept values, seeds pooled), in the order first seen."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    return [
        {
            "config": dict(zip(keys, cfg_values, strict=True)),
            "n": len(rs),
            "seeds": [r["seed"] for r in rs],
            **{m: describe([r[m] for r in rs]) for m in metrics},
        }
        for cfg_values, rs in groups.items()
    ]


def _fmt(d: dict, n: int) -> str:
    """A cell: '-' without values, the mean alone for one, else 'mean ± sd [95% CI]'; '(n = k)' where
    k of the configuration's ``n`` members are finite."""
    if d["n"] == 0:
        return "-"
    text = (
        number(d["mean"])
        if d["n"] == 1
        else f"{pm(d['mean'], d['std'])} [{number(d['ci_low'])}, {number(d['ci_high'])}]"
    )
    return text + (f" (n = {d['n']})" if d["n"] < n else "")


def stats_table(stats: list[dict], metrics: Sequence[str]) -> str:
    """The configurations' table, and a note naming the seeds whose value of a metric is not finite."""
    labels = [point_label(s["config"].items(), short=False, empty="(base)") for s in stats]
    cells = [[_fmt(s[m], s["n"]) for m in metrics] for s in stats]
    w0 = max(map(len, labels + ["config"]))
    ws = [max(len(m), *(len(c[i]) for c in cells)) for i, m in enumerate(metrics)]
    lines = [f"{'config':<{w0}}  {'n':>3}  " + "  ".join(f"{m:<{w}}" for m, w in zip(metrics, ws, strict=True))]
    for label, s, c in zip(labels, stats, cells, strict=True):
        lines.append(f"{label:<{w0}}  {s['n']:>3}  " + "  ".join(f"{x:<{w}}" for x, w in zip(c, ws, strict=True)))
    where = [
        (f"{label} seed {s['seeds'][i]}", m)
        for label, s in zip(labels, stats, strict=True)
        for m in metrics
        for i in s[m]["left_out"]
    ]
    return "\n".join(lines + ([left_out(where)] if where else []))


# ---------------------------------------------------------------------------------------------
# Plots: a metric against a swept value, one line per combination of the other swept values
# ---------------------------------------------------------------------------------------------


def plot(stats: list[dict], x: str, metric: str, path_stem: Path, err: str = "ci") -> list[Path]:
    plt = pyplot()
    others = [k for k in stats[0]["config"] if k != x]
    series: dict[tuple, list[dict]] = {}
    for s in stats:
        series.setdefault(tuple(s["config"][k] for k in others), []).append(s)
    xs_all = list(dict.fromkeys(s["config"][x] for s in stats))
    numeric = all(isinstance(v, (int, float)) for v in xs_all)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for key, ss in series.items():
        xv = [s["config"][x] if numeric else xs_all.index(s["config"][x]) for s in ss]
        mean = [s[metric]["mean"] for s in ss]
        if err == "std":
            e = [0.0 if math.isnan(s[metric]["std"]) else s[metric]["std"] for s in ss]
        else:
            e = [0.0 if math.isnan(s[metric]["ci_high"]) else s[metric]["ci_high"] - s[metric]["mean"] for s in ss]
        label = point_label(zip(others, key, strict=True)) or None
        ax.errorbar(xv, mean, yerr=e, marker="o", capsize=3, label=label)
    if numeric:
        pos = [v for v in xs_all if v > 0]
        if pos and min(xs_all) >= 0 and max(pos) / min(pos) >= 100:
            ax.set_xscale("symlog", linthresh=min(pos)) if 0 in xs_all else ax.set_xscale("log")
    else:
        ax.set_xticks(range(len(xs_all)), [value(v) for v in xs_all])
    n = max(s["n"] for s in stats)
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} vs {x} (mean, {'95% CI' if err == 'ci' else 'std'}, n<={n} seeds)", fontsize=9)
    if len(series) > 1:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    png = save(fig, path_stem)
    return [png, png.with_suffix(".pdf")]


# ---------------------------------------------------------------------------------------------
# forgetlab summarize SWEEP_DIR
# ---------------------------------------------------------------------------------------------


def summarize(
    out: str | Path,
    metrics: Sequence[str] | None = None,
    xs: Sequence[str] | None = None,
    err: str = "ci",
    plots: bool = True,
) -> tuple[str, list[Path]]:
    """The statistics table (text) and the plot files of the sweep in ``out``; also writes summary.csv."""
    out = Path(out)
    spec = load_spec(out)
    metrics = list(metrics or DEFAULT_METRICS)
    for m in metrics:
        if m not in METRICS:
            raise ForgetlabError(f"unknown metric {m!r}; valid: {', '.join(METRICS)}")
    if err not in ("ci", "std"):
        raise ForgetlabError(f"error bars {err!r} are not valid; choose ci or std")
    keys = [k for k, _ in spec["axes"]]
    varied = [k for k, vs in spec["axes"] if len(vs) > 1]
    for x in xs or ():
        if x not in varied:
            raise ForgetlabError(f"{x!r} is not a swept key with several values; swept: {', '.join(varied) or 'none'}")
    records = write_tables(out, spec["members"], Store(out))
    if not records:
        raise ForgetlabError(f"no finished members in {out}/members yet; run the sweep first")
    rows = member_rows(spec["members"], records)
    stats = config_stats(rows, keys, metrics)
    flat = [
        {
            **{k: _cell(v) for k, v in s["config"].items()},
            "metric": m,
            "n": s[m]["n"],
            **{f: s[m][f] for f in ("mean", "std", "ci_low", "ci_high")},
        }
        for s in stats
        for m in metrics
    ]
    atomic_write(out / "summary.csv", rows_to_csv(flat))
    n_all = len(spec["members"])
    head = (
        f"{spec['name']}: {len(records)} of {n_all} members finished, {len(stats)} configurations; "
        f"mean ± std [95% CI, t-distribution] over seeds"
    )
    text = head + "\n" + stats_table(stats, metrics)
    paths: list[Path] = []
    if plots and len(stats) > 1:
        for x in xs or varied:  # save() makes the folder
            for m in metrics:
                paths += plot(stats, x, m, out / "plots" / f"{m}-vs-{x}", err)
    return text, paths
