"""The PNG figures of ``clipcore iin`` and ``clipcore vae``: probe accuracies and edit rates, the deck's
edit grid (decoded images), the correlation heat maps, reconstructions. Matplotlib (Agg) is imported
inside each function.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

__all__ = ["probe_plot", "image_grid", "correlation_heatmaps"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str, dpi: int = 120) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=dpi)
    _pyplot().close(fig)


def probe_plot(path: str, ev) -> None:
    """Probe accuracy per (factor, attribute) and the edit rates of an ``IINEvaluation``."""
    plt = _pyplot()
    k = len(ev.names)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(4 + 2.2 * k, 3.8))
    im = ax1.imshow(ev.probe_accuracy, vmin=0.5, vmax=1.0, cmap="viridis")
    ax1.set_xticks(range(k), ev.names, rotation=30)
    ax1.set_yticks(range(k + 1), [f"z̄[{n}] ({s})" for n, s in zip(ev.names, ev.factor_sizes)]
                   + [f"residual ({ev.factor_sizes[-1]})"])
    for i in range(k + 1):
        for j in range(k):
            v = ev.probe_accuracy[i, j]
            ax1.text(j, i, f"{v:.2f}", ha="center", va="center", color="w" if v < 0.8 else "k")
    ax1.set_xlabel("attribute predicted")
    ax1.set_title("probe accuracy per factor")
    fig.colorbar(im, ax=ax1, fraction=0.046)
    x = np.arange(k)
    w = 0.27
    ax2.bar(x - w, ev.flip_rate, w, label="F flipped")
    ax2.bar(x, ev.collateral_rate, w, label="collateral")
    ax2.bar(x + w, ev.success_rate, w, label="success")
    ax2.set_xticks(x, ev.names, rotation=30)
    ax2.set_ylim(0, 1.05)
    ax2.set_title(f"edits (success {ev.edit_success:.1%})")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def image_grid(path: str, grid: np.ndarray, labels: Sequence[str], title: str = "") -> None:
    """``grid [rows, cols, H, W]`` grey images in [0, 1], one labelled column per edit."""
    plt = _pyplot()
    rows, cols = grid.shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(1.1 * cols, 1.1 * rows + 0.5), squeeze=False)
    for i in range(rows):
        for j in range(cols):
            ax = axes[i, j]
            ax.imshow(grid[i, j], cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(labels[j], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def correlation_heatmaps(path: str, panels: Sequence) -> None:
    """One heat map per ``SemanticCorrelation`` (features × components), values written in the cells."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), squeeze=False,
                             figsize=(sum(1.5 + 0.55 * len(p.component_names) for p in panels),
                                      1.6 + 0.45 * max(len(p.feature_names) for p in panels)))
    for ax, p in zip(axes[0], panels):
        m = np.asarray(p.matrix, np.float64)
        signed = p.kind == "pca"
        im = ax.imshow(m, vmin=-1.0 if signed else 0.0, vmax=1.0, cmap="coolwarm" if signed else "viridis")
        ax.set_xticks(range(len(p.component_names)), p.component_names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(p.feature_names)), p.feature_names, fontsize=8)
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                if np.isfinite(m[i, j]):
                    ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=7)
        ax.set_title("Pearson r with principal components" if signed else "multiple correlation R with IIN factors",
                     fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    _save(fig, path)
