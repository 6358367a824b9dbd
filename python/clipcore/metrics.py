"""Clustering metrics: ACC (Hungarian matching) and scikit-learn's ARI, AMI, NMI, FMI.

ACC is the accuracy of the best one-to-one mapping of predicted clusters to
true classes (Xie, Girshick & Farhadi 2016, eq. 10), found with the Hungarian
algorithm (``scipy.optimize.linear_sum_assignment`` on ``w.max() − w``, w the
contingency table).  The other four are scikit-learn's, not reimplemented:
adjusted Rand index, adjusted and normalised mutual information
(``average_method="arithmetic"``) and the Fowlkes–Mallows index.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = ["ClusterMetrics", "cluster_metrics", "clustering_accuracy"]


class ClusterMetrics(NamedTuple):
    """Agreement of a clustering with the true labels (1 = perfect).

    Attributes:
      acc: accuracy under the best one-to-one cluster→class mapping.
      ari: adjusted Rand index (scikit-learn).
      ami: adjusted mutual information, arithmetic mean (scikit-learn).
      nmi: normalised mutual information, arithmetic mean (scikit-learn).
      fmi: Fowlkes–Mallows index (scikit-learn).
    """

    acc: float
    ari: float
    ami: float
    nmi: float
    fmi: float


def _as_labels(y: Any, name: str) -> np.ndarray:
    if y is None:
        raise ValueError(f"{name}: expected a 1-D array of labels, got None")
    a = np.asarray(y)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of labels [n], got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name}: empty array of labels (shape {a.shape})")
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            kind = "NaN" if np.isnan(a).any() else "Inf"
            raise ValueError(f"{name}: contains {kind} at position {int(np.flatnonzero(~np.isfinite(a))[0])}")
        if not np.all(a == np.round(a)):
            raise ValueError(f"{name}: labels must be integers, got non-integer floats (dtype {a.dtype})")
        a = a.astype(np.int64)
    elif not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.bool_)
              or a.dtype.kind in "US"):
        raise ValueError(f"{name}: expected integer (or string) labels, got dtype {a.dtype}")
    return a


def _check_pair(labels_true: Any, labels_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = _as_labels(labels_true, "labels_true")
    p = _as_labels(labels_pred, "labels_pred")
    if t.shape[0] != p.shape[0]:
        raise ValueError(
            f"labels_pred: {p.shape[0]} labels but labels_true has {t.shape[0]}; "
            "both must label the same points in the same order"
        )
    return t, p


def clustering_accuracy(labels_true: Any, labels_pred: Any) -> float:
    """ACC = max over one-to-one maps m of (1/n) Σ_i 1[y_i = m(c_i)].

    Args:
      labels_true: ``[n]`` class labels (any hashable values).
      labels_pred: ``[n]`` cluster labels; the numbers of clusters and classes
        may differ (unmatched clusters count as errors).

    Returns:
      ACC in [0, 1].
    """
    from scipy.optimize import linear_sum_assignment

    t, p = _check_pair(labels_true, labels_pred)
    _, ti = np.unique(t, return_inverse=True)
    _, pi = np.unique(p, return_inverse=True)
    w = np.zeros((pi.max() + 1, ti.max() + 1), dtype=np.int64)
    np.add.at(w, (pi, ti), 1)
    rows, cols = linear_sum_assignment(w.max() - w)
    return float(w[rows, cols].sum() / t.shape[0])


def cluster_metrics(labels_true: Any, labels_pred: Any) -> ClusterMetrics:
    """ACC, ARI, AMI, NMI and FMI of a clustering (the DEC paper's and the deck's metrics).

    Args:
      labels_true: ``[n]`` ground-truth classes.
      labels_pred: ``[n]`` predicted clusters (same points, same order).

    Returns:
      ClusterMetrics(acc, ari, ami, nmi, fmi).

    Raises:
      ValueError: not 1-D, empty, lengths differ, NaN/Inf or non-integer floats.
    """
    from sklearn import metrics as skm

    t, p = _check_pair(labels_true, labels_pred)
    return ClusterMetrics(
        acc=clustering_accuracy(t, p),
        ari=float(skm.adjusted_rand_score(t, p)),
        ami=float(skm.adjusted_mutual_info_score(t, p, average_method="arithmetic")),
        nmi=float(skm.normalized_mutual_info_score(t, p, average_method="arithmetic")),
        fmi=float(skm.fowlkes_mallows_score(t, p)),
    )
