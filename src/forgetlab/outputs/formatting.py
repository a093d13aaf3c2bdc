"""How numbers and configuration points are written in tables, logs and figure titles: one spelling each."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

from forgetlab.outputs.stats import Interval, sample


def mean_sd(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1) over the finite values (a diverged seed's NaN left out);
    sd NaN below two values (no spread to measure), (NaN, NaN) for none."""
    s = sample(values)
    return s.mean, s.sd


def number(v: float) -> str:
    """4 decimals below 10, 2 from there (losses of forgotten tasks reach 10-20); an en dash for NaN."""
    if v is None or math.isnan(v):
        return "–"
    return f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"


def pm(mean: float, sd: float, digits: int | None = None) -> str:
    """'mean ± sd'; the mean alone where sd is NaN (one seed: no spread), an en dash for a NaN mean.
    ``digits``: that many decimals for both, else ``number``'s."""
    if mean is None or math.isnan(mean):
        return "–"
    if digits is None:
        return number(mean) if math.isnan(sd) else f"{number(mean)} ± {number(sd)}"
    return f"{mean:.{digits}f}" if math.isnan(sd) else f"{mean:.{digits}f} ± {sd:.{digits}f}"


def pm_of(values: Iterable[float], digits: int | None = None, n: int | None = None) -> str:
    """'mean ± sd' over seeds' finite values; '(n = k)' appended where k is less than ``n`` (the seeds
    the table states: some were not finite and are left out)."""
    s = sample(values)
    text = pm(s.mean, s.sd, digits)
    return text + (f" (n = {s.n})" if n is not None and 0 < s.n < n else "")


def interval(iv: Interval, digits: int | None = None) -> str:
    """'[low, high]' of an interval; '–' where it is not measured (fewer than 2 seeds)."""
    if not iv.measured:
        return "–"
    if digits is None:
        return f"[{number(iv.low)}, {number(iv.high)}]"
    return f"[{iv.low:.{digits}f}, {iv.high:.{digits}f}]"


def seeds_phrase(n: int) -> str:
    """'3 seeds, mean ± std' or '1 seed: no spread' (a table's caption)."""
    return "1 seed: no spread" if n == 1 else f"{n} seeds, mean ± std"


def left_out(where: Sequence[tuple[str, Any]]) -> str:
    """The note under a table naming values left out as not finite (a seed that diverged to NaN or
    inf), e.g. [("seed 2", "val loss task 2")] -> 'Not finite, left out (the seed diverged): seed 2 in
    val loss task 2.'; '' for none."""
    if not where:
        return ""
    by: dict[str, list[str]] = {}
    for who, what in where:
        by.setdefault(str(who), []).append(str(what))
    parts = [f"{who} in {', '.join(dict.fromkeys(whats))}" for who, whats in by.items()]
    return "Not finite, left out (the seed diverged): " + "; ".join(parts) + "."


def value(v: Any) -> str:
    """A config value: floats as %g, tuples and lists (hidden sizes, tasks) as compact JSON."""
    if isinstance(v, (tuple, list)):
        return json.dumps(jsonable(v), separators=(",", ":"))
    return f"{v:g}" if isinstance(v, float) else str(v)


def jsonable(v: Any) -> Any:
    return [jsonable(x) for x in v] if isinstance(v, (tuple, list)) else v


def point_label(point: Iterable[tuple[str, Any]], short: bool = True, empty: str = "") -> str:
    """'l1=0.1 lr=0.01' for [("train.l1", 0.1), ("train.lr", 0.01)]; ``short`` keeps the key's last part."""
    text = " ".join(f"{k.split('.')[-1] if short else k}={value(v)}" for k, v in point)
    return text or empty
