"""Correlation of semantic features with embedding directions (the deck's last figure).

Semantic features are per-sample numbers: attribute labels, or each sample's
CLIP similarity to a list of attribute prompts (:func:`prompt_similarities`).
Embedding directions are the principal components of the embeddings
(:func:`principal_components`) or the coordinates of an IIN's factors z̄ = T(z).
:func:`correlation_matrix` gives Pearson's r between every feature and every
direction; :func:`factor_correlation` summarises a multi-dimensional factor by
the multiple correlation R of a feature with all of the factor's coordinates
(the correlation between the feature and its least-squares fit on them).
Host NumPy, float64.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

__all__ = ["correlation_matrix", "prompt_similarities", "principal_components", "factor_correlation",
           "SemanticCorrelation", "semantic_correlation"]


def _as_2d(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x, np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] < 2:
        raise ValueError(f"{name}: expected [n, k] with n ≥ 2 rows, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: contains NaN or Inf")
    return a


def correlation_matrix(features: Any, components: Any) -> np.ndarray:
    """Pearson's r between every feature column and every component column.

    Args:
      features: ``[n, F]`` (or ``[n]``) semantic features.
      components: ``[n, C]`` (or ``[n]``) embedding directions (PCA scores, IIN factor coordinates, …).

    Returns:
      ``[F, C]``; NaN where a column is constant.
    """
    f = _as_2d(features, "features")
    c = _as_2d(components, "components")
    if f.shape[0] != c.shape[0]:
        raise ValueError(f"components: {c.shape[0]} rows but features has {f.shape[0]}; row i is sample i")
    fc, cc = f - f.mean(axis=0), c - c.mean(axis=0)
    fn, cn = np.linalg.norm(fc, axis=0), np.linalg.norm(cc, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (fc.T @ cc) / np.outer(fn, cn)
    r[np.outer(fn == 0, np.ones(len(cn), bool)) | np.outer(np.ones(len(fn), bool), cn == 0)] = np.nan
    return np.clip(r, -1.0, 1.0)


def prompt_similarities(embeddings: Any, prompt_embeddings: Any) -> np.ndarray:
    """Cosine similarity of every sample to every prompt: ``[n, D]`` × ``[P, D]`` → ``[n, P]``."""
    z = _as_2d(embeddings, "embeddings")
    p = np.asarray(prompt_embeddings, np.float64)
    if p.ndim == 1:
        p = p[None]
    if p.ndim != 2 or p.shape[1] != z.shape[1]:
        raise ValueError(f"prompt_embeddings: expected [P, {z.shape[1]}] (the embeddings' dimension), "
                         f"got shape {p.shape}")
    zn, pn = np.linalg.norm(z, axis=1, keepdims=True), np.linalg.norm(p, axis=1, keepdims=True)
    if (zn == 0).any() or (pn == 0).any():
        raise ValueError("embeddings / prompt_embeddings: a zero row has no direction")
    return (z / zn) @ (p / pn).T


def principal_components(embeddings: Any, k: int) -> np.ndarray:
    """Scores on the top ``k`` principal axes of the centred embeddings (float64 SVD): ``[n, k]``.

    Each axis's sign is fixed so that its largest-magnitude entry is positive.
    """
    z = _as_2d(embeddings, "embeddings")
    if isinstance(k, bool) or int(k) != k or not 0 < k <= min(z.shape):
        raise ValueError(f"k: expected an integer in 1..{min(z.shape)}, got {k!r}")
    zc = z - z.mean(axis=0)
    _, _, vt = np.linalg.svd(zc, full_matrices=False)
    v = vt[:int(k)].T
    v = v * np.sign(v[np.argmax(np.abs(v), axis=0), np.arange(v.shape[1])])
    return zc @ v


def factor_correlation(features: Any, zbar: Any, factor_sizes: Sequence[int]) -> np.ndarray:
    """Multiple correlation R of each feature with each factor's coordinates: ``[F, K+1]``.

    R = corr(feature, its least-squares fit on [1, z̄_k]) ∈ [0, 1]; for a
    one-dimensional factor it is |Pearson's r|.

    Args:
      features: ``[n, F]`` semantic features.
      zbar: ``[n, D]`` IIN outputs; factor_sizes: K+1 sizes summing to D (the last is the residual).
    """
    f = _as_2d(features, "features")
    y = _as_2d(zbar, "zbar")
    sizes = [int(s) for s in factor_sizes]
    if sum(sizes) != y.shape[1] or f.shape[0] != y.shape[0]:
        raise ValueError(f"zbar: shape {y.shape} does not match factor sizes {sizes} and {f.shape[0]} rows")
    out = np.zeros((f.shape[1], len(sizes)))
    for j, part in enumerate(np.split(y, np.cumsum(sizes)[:-1], axis=1)):
        design = np.concatenate([np.ones((y.shape[0], 1)), part], axis=1)
        coef, *_ = np.linalg.lstsq(design, f, rcond=None)
        fit = design @ coef
        out[:, j] = [abs(correlation_matrix(f[:, i], fit[:, i])[0, 0]) for i in range(f.shape[1])]
    return out


class SemanticCorrelation(NamedTuple):
    """What :func:`semantic_correlation` measured.

    Attributes:
      feature_names: the F semantic features (attribute names or prompts).
      component_names: the C embedding directions.
      matrix: ``[F, C]`` Pearson's r (or R for factors).
      kind: ``"pca"`` or ``"factors"``.
    """

    feature_names: tuple[str, ...]
    component_names: tuple[str, ...]
    matrix: np.ndarray
    kind: str

    def as_dict(self) -> dict:
        """JSON-ready."""
        return {"features": list(self.feature_names), "components": list(self.component_names),
                "matrix": np.where(np.isfinite(self.matrix), self.matrix, None).tolist(), "kind": self.kind}


def semantic_correlation(features: Any, feature_names: Sequence[str], *, embeddings: Any = None, k: int = 8,
                         zbar: Any = None, factor_sizes: Sequence[int] | None = None,
                         factor_names: Sequence[str] | None = None) -> SemanticCorrelation:
    """Features against the embedding's top-``k`` principal components, or against an IIN's factors.

    Give ``embeddings`` (PCA, Pearson's r per component) or ``zbar`` with
    ``factor_sizes`` (multiple correlation R per factor; ``factor_names``
    default ``factor0, …, residual``).
    """
    names = tuple(str(n) for n in feature_names)
    f = _as_2d(features, "features")
    if len(names) != f.shape[1]:
        raise ValueError(f"feature_names: {len(names)} names for {f.shape[1]} features")
    if (embeddings is None) == (zbar is None):
        raise ValueError("embeddings: give exactly one of embeddings= (principal components) and zbar= (factors)")
    if zbar is not None:
        if factor_sizes is None:
            raise ValueError("factor_sizes: needed with zbar")
        cols = tuple(factor_names) if factor_names is not None else tuple(
            [f"factor{i}" for i in range(len(factor_sizes) - 1)] + ["residual"])
        return SemanticCorrelation(names, cols, factor_correlation(f, zbar, factor_sizes), "factors")
    pcs = principal_components(embeddings, k)
    return SemanticCorrelation(names, tuple(f"PC{i + 1}" for i in range(pcs.shape[1])),
                               correlation_matrix(f, pcs), "pca")
