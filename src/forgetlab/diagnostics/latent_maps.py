"""Latent maps: 2-D t-SNE embeddings of the hidden activations recorded by the latent probe, cached
beside the run, drawn as scatter plots coloured and marked by class."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from forgetlab.diagnostics import ProbeData
from forgetlab.outputs.files import atomic_write
from forgetlab.outputs.plotting import MARKERS, PALETTE, pyplot, save


def tsne(h: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE (scikit-learn, Barnes-Hut, PCA initialisation, perplexity 30) of [N, features]."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    h = np.asarray(h, dtype=np.float32)
    with threadpool_limits(1):  # a 300-point map gains nothing from threads; spinning threads on a busy CPU lose
        return TSNE(2, init="pca", perplexity=30, random_state=seed, learning_rate="auto", n_jobs=1).fit_transform(h)


def embeddings(pd: ProbeData, run_dir: Path, picks: list[tuple[int, int, int]]) -> dict[tuple, np.ndarray]:
    """t-SNE of latent_h{layer}[task, member] for each (task, member, layer) in ``picks``; cached in
    ``run_dir/tsne.npz`` so redrawing is fast."""
    path = Path(run_dir) / "tsne.npz"
    cache = dict(np.load(path)) if path.exists() else {}
    out, changed = {}, False
    for t, e, layer in picks:
        key = f"t{t}_m{e}_h{layer}"
        if key not in cache:
            cache[key] = tsne(pd[f"latent_h{layer}"][t, e]).astype(np.float32)
            changed = True
        out[(t, e, layer)] = cache[key]
    if changed:
        buf = io.BytesIO()
        np.savez(buf, **cache)
        atomic_write(path, buf.getvalue())
    return out


def latent_map(panels: list[tuple[str, np.ndarray]], y: np.ndarray, title: str, stem: Path, ncols: int = 5) -> Path:
    """Scatter plots of 2-D embeddings coloured (and marked) by class; ``panels`` = [(title, [N, 2])]."""
    plt = pyplot()
    n = len(panels)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.35 * ncols + 0.9, 2.35 * nrows + 0.3), squeeze=False)
    for ax, (sub, emb) in zip(axes.flat, panels, strict=True):
        for c in np.unique(y):
            m = y == c
            ax.scatter(
                emb[m, 0], emb[m, 1], s=7, color=PALETTE[c % 10], marker=MARKERS[c % 10], lw=0, label=str(c), alpha=0.85
            )
        ax.set_title(sub)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        for side in ("top", "right"):
            ax.spines[side].set_visible(True)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    axes[0, 0].set_xlabel("t-SNE 1")
    axes[0, 0].set_ylabel("t-SNE 2")
    axes[0, -1].legend(title="class", loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=2, handletextpad=0.1)
    fig.suptitle(f"{title} (t-SNE of {len(y)} validation examples, {len(y) // 10} per class)", y=1.06)
    return save(fig, stem)


def latent_picks(pd: ProbeData, member_index: list[int], tasks: str, layers: str) -> list[tuple[int, int, int]]:
    """(task, member, layer) of the maps to draw: the group's first member, every task or the last, the
    last hidden layer or all of them."""
    n_layers = sum(k.startswith("latent_h") for k in pd.arrays)
    T = pd[f"latent_h{n_layers}"].shape[0]
    ls = list(range(1, n_layers + 1)) if layers == "all" else [n_layers]
    ts = range(T) if tasks == "all" else [T - 1]
    return [(t, member_index[0], layer) for layer in ls for t in ts]
