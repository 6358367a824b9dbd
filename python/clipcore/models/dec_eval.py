"""k-means, AE + k-means and DEC side by side on one set of embeddings (the body of ``clipcore cluster``).

The three clusterings the DEC paper compares (Xie, Girshick & Farhadi 2016,
table 2): k-means on the inputs (scikit-learn, ``n_init`` restarts), k-means
on the pretrained autoencoder's embedding (the centres DEC starts from) and
DEC itself, each scored with :func:`clipcore.cluster_metrics` (ACC, ARI, AMI,
NMI, FMI) when true labels are given; and a t-SNE (scikit-learn) of the DEC
embedding for pictures.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import numpy as np

from .._validate import as_embeddings, check_positive_int
from ..metrics import ClusterMetrics, cluster_metrics
from .dec import DEC

__all__ = ["DECEvaluation", "evaluate_dec", "tsne_embedding", "METHODS"]

#: The clusterings compared, in the order they are reported.
METHODS = ("k-means", "AE + k-means", "DEC")


class DECEvaluation(NamedTuple):
    """The three clusterings of one set.

    Attributes:
      dec: the fitted :class:`~clipcore.models.DEC` (its ``history`` holds the AE + k-means labels).
      labels: method → ``[n]`` int cluster labels (methods as :data:`METHODS`).
      seconds: method → wall time (AE + k-means: pretraining plus its k-means).
      metrics: method → :class:`~clipcore.metrics.ClusterMetrics`, or None without true labels.
      k: the number of clusters.
    """

    dec: DEC
    labels: dict
    seconds: dict
    metrics: dict | None
    k: int

    def results(self) -> dict:
        """JSON-ready: per method its seconds, cluster sizes and (with labels) acc, ari, ami, nmi, fmi."""
        out = {}
        for name in METHODS:
            entry: dict = {"seconds": self.seconds[name],
                           "cluster_sizes": np.bincount(self.labels[name], minlength=self.k).tolist()}
            if self.metrics is not None:
                entry.update(self.metrics[name]._asdict())
            out[name] = entry
        return out


def evaluate_dec(embeddings: Any, labels: Any = None, *, k: int = 10, n_init: int = 20, seed: int = 0,
                 **dec_options: Any) -> DECEvaluation:
    """Cluster ``embeddings`` with k-means, AE + k-means and DEC, and score each against ``labels``.

    Args:
      embeddings: ``[n, d]`` inputs, n ≥ k.
      labels: ``[n]`` true classes, or None (no metrics).
      k: number of clusters.
      n_init: k-means restarts (both k-means runs; the paper: 20).
      seed: seeds k-means and DEC.
      dec_options: further :class:`~clipcore.models.DECConfig` fields (``pretrain_steps``, ``progress``, …).

    Returns:
      DECEvaluation.

    Raises:
      ValueError: bad embeddings, k > n, labels of another length, or a bad DEC option.
    """
    from sklearn.cluster import KMeans

    dec = DEC(k, n_init=n_init, seed=seed, **dec_options)  # options checked before the slow parts
    x = np.asarray(as_embeddings(embeddings, "embeddings"))
    n = x.shape[0]
    if check_positive_int(k, "k") > n:
        raise ValueError(f"k: {k} clusters but embeddings has only {n} rows (shape {tuple(x.shape)})")
    if labels is not None and np.shape(labels)[:1] != (n,):
        raise ValueError(f"labels: {np.shape(labels)[0] if np.ndim(labels) else 0} labels but embeddings has {n} "
                         "rows; row i of the labels must label row i of the embeddings")
    t0 = time.perf_counter()
    km = KMeans(k, n_init=n_init, random_state=seed).fit(x.astype(np.float64))
    t_km = time.perf_counter() - t0
    t0 = time.perf_counter()
    dec.fit(x)
    t_dec = time.perf_counter() - t0
    h = dec.history
    found = {"k-means": km.labels_.astype(np.int64), "AE + k-means": h.init_labels, "DEC": dec.labels_}
    seconds = {"k-means": t_km, "AE + k-means": h.pretrain_seconds + h.kmeans_seconds, "DEC": t_dec}
    metrics: dict[str, ClusterMetrics] | None = None
    if labels is not None:
        metrics = {name: cluster_metrics(labels, found[name]) for name in METHODS}
    return DECEvaluation(dec, found, seconds, metrics, k)


def tsne_embedding(z: Any, samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 2-D t-SNE (scikit-learn, PCA start) of a seeded subsample of ``z``.

    Args:
      z: ``[n, e]`` points (e.g. the DEC embedding).
      samples: points shown (all when ≥ n).
      seed: the subsample's and t-SNE's seed.

    Returns:
      ``(idx [m], coordinates [m, 2])``: the rows of ``z`` shown and where.
    """
    from sklearn.manifold import TSNE

    z = np.asarray(z)
    n = z.shape[0]
    samples = check_positive_int(samples, "samples")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(n, size=samples, replace=False)) if samples < n else np.arange(n)
    perplexity = float(min(30.0, max(2.0, (idx.size - 1) / 3.0)))
    emb = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(z[idx].astype(np.float64))
    return idx, emb
