"""Figure helpers: legends say what is drawn and nothing else."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from recsys_ref.book.plotting import plot_embedding_2d  # noqa: E402


def _legend_labels(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_embedding_plot_has_no_other_entry_when_every_label_is_kept():
    xy = np.arange(12, dtype=float).reshape(6, 2)
    fig, ax = plt.subplots()
    plot_embedding_2d(xy, ["a", "a", "a", "b", "b", "c"], ax=ax, max_classes=3)
    assert _legend_labels(ax) == ["a", "b", "c"]          # most common first
    plt.close(fig)


def test_embedding_plot_greys_out_labels_beyond_max_classes():
    xy = np.arange(12, dtype=float).reshape(6, 2)
    fig, ax = plt.subplots()
    plot_embedding_2d(xy, ["a", "a", "a", "b", "b", "c"], ax=ax, max_classes=2)
    assert _legend_labels(ax) == ["other", "a", "b"]
    grey = ax.collections[0]                               # drawn first, underneath
    assert len(grey.get_offsets()) == 1 and tuple(grey.get_offsets()[0]) == (10.0, 11.0)
    plt.close(fig)
