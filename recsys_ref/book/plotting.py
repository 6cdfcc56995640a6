r"""The book's figure style and a few plots that recur across chapters.

Call :func:`use_book_style` once per chapter (it is cheap and idempotent). All helpers
take an optional ``ax`` and return it, so chapters can compose them.

Used in: every chapter (first in ``chapters/01_recsys_basics``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

__all__ = ["PALETTE", "use_book_style", "plot_long_tail", "plot_history", "plot_metric_bars",
           "plot_embedding_2d"]

#: colour-blind safe palette (Okabe & Ito)
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")


def use_book_style() -> None:
    """Matplotlib defaults for the book: readable sizes, light grid, the palette, and
    deterministic SVG/PNG output (no timestamps or random ids in saved files)."""
    mpl.rcParams.update({
        "figure.figsize": (6.4, 3.6),
        "figure.dpi": 110,
        "savefig.dpi": 110,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.prop_cycle": mpl.cycler(color=PALETTE),
        "font.size": 10,
        "axes.titlesize": 11,
        "legend.frameon": False,
        "svg.hashsalt": "recsys-book",
    })


def _ax(ax):
    return ax if ax is not None else plt.subplots()[1]


def plot_long_tail(counts: np.ndarray, ax=None, head_share: float = 0.2, label: str = "item"):
    """Interactions per item, sorted, with the share of interactions the top
    ``head_share`` of items receive written on the plot."""
    ax = _ax(ax)
    c = np.sort(np.asarray(counts))[::-1]
    ax.plot(np.arange(1, len(c) + 1), c, color=PALETTE[0])
    n_head = max(1, int(round(head_share * len(c))))
    share = c[:n_head].sum() / c.sum()
    ax.axvline(n_head, color=PALETTE[3], ls="--", lw=1)
    ax.text(n_head * 1.05, c.max() * 0.8,
            f"top {head_share:.0%} of {label}s\nget {share:.0%} of interactions", color=PALETTE[3])
    ax.set_xlabel(f"{label} rank by popularity")
    ax.set_ylabel("interactions")
    return ax


def plot_history(frame, columns: Sequence[str] = ("loss",), ax=None, title: str | None = None):
    """Training curves from :attr:`recsys_ref.train.trainer.History.frame`."""
    ax = _ax(ax)
    for col in columns:
        sub = frame.dropna(subset=[col])
        ax.plot(sub["epoch"], sub[col], marker="o", ms=3, label=col)
    ax.set_xlabel("epoch")
    ax.legend()
    if title:
        ax.set_title(title)
    return ax


def plot_metric_bars(results: Mapping[str, Mapping[str, float]], metrics: Sequence[str], ax=None):
    """Grouped bars: one group per metric, one bar per model."""
    ax = _ax(ax)
    names = list(results)
    width = 0.8 / max(1, len(names))
    x = np.arange(len(metrics))
    for j, name in enumerate(names):
        ax.bar(x + j * width - 0.4 + width / 2, [results[name][m] for m in metrics], width, label=name)
    ax.set_xticks(x, metrics)
    ax.legend()
    return ax


def plot_embedding_2d(xy: np.ndarray, labels: Sequence[str], ax=None, max_classes: int = 6,
                      title: str | None = None):
    """Scatter of 2-D points coloured by their label (the ``max_classes`` most common
    labels get colours, the rest are grey)."""
    ax = _ax(ax)
    labels = np.asarray(labels)
    uniq, cnt = np.unique(labels, return_counts=True)
    keep = uniq[np.argsort(-cnt, kind="stable")[:max_classes]]
    other = ~np.isin(labels, keep)
    if other.any():                      # grey "other" only when some label was left out
        ax.scatter(xy[other, 0], xy[other, 1], s=4, c="#BBBBBB", label="other")
    for j, lab in enumerate(keep):
        sel = labels == lab
        ax.scatter(xy[sel, 0], xy[sel, 1], s=6, color=PALETTE[j % len(PALETTE)], label=str(lab))
    ax.legend(markerscale=3, fontsize=8)
    if title:
        ax.set_title(title)
    return ax
