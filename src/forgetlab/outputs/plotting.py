"""The figure helpers every plot uses: the house style, the palette, the mean-and-band line, task
boundaries, and ``save`` (PNG and PDF, each written atomically)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from forgetlab.outputs.files import atomic_write

# Okabe-Ito without yellow (too pale for lines), then wine, olive and grey for ten classes
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#882255", "#999933", "#999999"]
MARKERS = ["o", "s", "^", "v", "D", "P", "X", "*", "<", ">"]
BOUNDARY = dict(color="#777777", ls=":", lw=1.0, zorder=0)


def pyplot():
    """matplotlib.pyplot on the Agg backend, with the house style set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "figure.dpi": 110,
            "savefig.dpi": 150,
            "font.size": 9,
            "axes.titlesize": 9.5,
            "axes.labelsize": 9,
            "legend.fontsize": 8,
            "legend.frameon": False,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.color": "#e6e6e6",
            "grid.linewidth": 0.6,
            "lines.linewidth": 1.4,
            "savefig.bbox": "tight",
            "pdf.fonttype": 42,
        }
    )
    return plt


def save(fig, stem: Path) -> Path:
    """Write ``stem.png`` and ``stem.pdf``, each atomically (a figure file that exists is complete),
    close the figure and return the PNG's path."""
    plt = pyplot()
    stem = Path(stem)
    try:  # atomic_write makes the folder (an OSError there is one error line too)
        for ext in ("png", "pdf"):
            buf = io.BytesIO()
            fig.savefig(buf, format=ext)
            atomic_write(stem.parent / f"{stem.name}.{ext}", buf.getvalue())
    finally:
        plt.close(fig)
    return stem.parent / f"{stem.name}.png"


def band(ax, x, values, color, label=None, ls="-", lw=None, alpha=0.2, log=False):
    """Mean over the member axis (axis 1) with a +-1 std band (only when there are several seeds).

    With ``log``, mean and std are taken of log10(values) (a band that stays positive on a log axis)."""
    values = np.asarray(values, dtype=float)
    if log:
        values = np.log10(np.clip(values, 1e-12, None))
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(values, 1) if values.ndim > 1 else values
        sd = np.nanstd(values, 1, ddof=1) if values.ndim > 1 and values.shape[1] > 1 else None
    f = (lambda v: 10**v) if log else (lambda v: v)
    ax.plot(x, f(mean), color=color, label=label, ls=ls, lw=lw)
    if sd is not None:
        lo, hi = mean - sd, mean + sd
        finite = values[np.isfinite(values)]
        if not log and finite.size and finite.min() >= 0 and finite.max() <= 1:  # accuracy, probability, sparsity
            lo, hi = np.clip(lo, 0, 1), np.clip(hi, 0, 1)  # a band past 0 or 1 shows values no seed can have
        ax.fill_between(x, f(lo), f(hi), color=color, alpha=alpha, lw=0)


def boundaries(ax, starts) -> None:
    """Grey dotted lines at the start of every task after the first."""
    for s in starts[1:]:
        ax.axvline(s, **BOUNDARY)


def task_label(t: int, classes) -> str:
    return f"task {t + 1} [{','.join(map(str, classes))}]"
