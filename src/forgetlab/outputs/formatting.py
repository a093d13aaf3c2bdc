"""How numbers and configuration points are written in tables, logs and figure titles: one spelling each."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable
from typing import Any


def mean_sd(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n-1) over the values that are not NaN; sd 0 for one value,
    (NaN, NaN) for none."""
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return math.nan, math.nan
    return statistics.fmean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0


def number(v: float) -> str:
    """4 decimals below 10, 2 from there (losses of forgotten tasks reach 10-20); an en dash for NaN."""
    if v is None or math.isnan(v):
        return "–"
    return f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"


def pm(mean: float, sd: float, digits: int | None = None) -> str:
    """'mean ± sd'; ``digits``: that many decimals for both (an en dash for NaN), else ``number``'s."""
    if digits is None:
        return f"{number(mean)} ± {number(sd)}"
    return "–" if math.isnan(mean) else f"{mean:.{digits}f} ± {sd:.{digits}f}"


def pm_of(values: Iterable[float], digits: int | None = None) -> str:
    """'mean ± sd' over seeds' values (NaNs left out)."""
    return pm(*mean_sd(values), digits)


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
