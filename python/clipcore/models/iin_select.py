"""Edits of a fitted IIN judged by attribute probes on the original embeddings.

The judges of Esser, Rombach & Ommer 2020's attribute edits: one scikit-learn
logistic regression per attribute, trained on the original embeddings z. An
edit of factor F sets z̄_F to the target class's mean (the next class
cyclically: the other class when binary) and inverts; it *flips* when F's
probe then predicts the target class, and is *collateral* for every other
attribute whose probe prediction changed. :class:`EditJudge` is what
:meth:`clipcore.models.IIN.fit` selects its checkpoint with (on a validation
split) and what :func:`clipcore.models.evaluate_iin` reports (on held-out
data). Host code (scikit-learn), run between training chunks.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = ["probe", "EditRates", "EditJudge", "set_factor"]


def probe(seed: int):
    """A fresh probe: ``StandardScaler`` then ``LogisticRegression(max_iter=2000, random_state=seed)``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))


class EditRates(NamedTuple):
    """Per attribute F (``[K]`` each): the share of edits of F that flip F's probe to the target class,
    the share of (edit, other attribute) pairs whose probe prediction changed, and the share of edits
    that flip F with no other prediction changed."""

    flip: np.ndarray
    collateral: np.ndarray
    success: np.ndarray


def set_factor(zbar: np.ndarray, factor_sizes, f: int, values: np.ndarray) -> np.ndarray:
    """A copy of ``zbar [n, D]`` with factor ``f``'s coordinates set to ``values`` (``[n, size_f]``)."""
    lo = int(sum(factor_sizes[:f]))
    out = np.array(zbar, copy=True)
    out[:, lo:lo + int(factor_sizes[f])] = values
    return out


class EditJudge:
    """The K attribute probes, trained once on ``z [n, D]`` with ``attributes [n, K]`` (both host arrays).

    Args:
      z, attributes: the probes' training data (original embeddings, integer classes).
      seed: the probes' seed.
    """

    def __init__(self, z: Any, attributes: Any, seed: int = 0):
        z = np.asarray(z, np.float64)
        a = np.asarray(attributes)
        self.probes = [probe(seed).fit(z, a[:, k]) for k in range(a.shape[1])]

    def predict(self, z: Any) -> np.ndarray:
        """Each probe's prediction: ``[n, K]``."""
        z = np.asarray(z, np.float64)
        return np.stack([p.predict(z) for p in self.probes], axis=1)

    def rates(self, model: Any, z: Any, attributes: Any) -> EditRates:
        """Edit every row of ``z [m, D]`` once per attribute F and judge it.

        Args:
          model: a fitted :class:`clipcore.models.IIN` (``encode``, ``decode``, ``class_means``,
            ``factor_sizes``).
          z, attributes: ``[m, D]`` embeddings to edit and their ``[m, K]`` classes.
        """
        x = np.asarray(z, np.float64)
        a = np.asarray(attributes)
        k = a.shape[1]
        zbar = np.asarray(model.encode(x), np.float64)
        before = self.predict(x)
        flip, coll, succ = np.zeros(k), np.zeros(k), np.zeros(k)
        for f in range(k):
            means = np.asarray(model.class_means[f], np.float64)
            target = (a[:, f] + 1) % means.shape[0]
            edited = np.asarray(model.decode(set_factor(zbar, model.factor_sizes, f, means[target])), np.float64)
            after = self.predict(edited)
            flipped = after[:, f] == target
            others = [g for g in range(k) if g != f]
            changed = after[:, others] != before[:, others]
            flip[f] = flipped.mean()
            coll[f] = changed.mean() if others else 0.0
            succ[f] = (flipped & ~changed.any(axis=1)).mean()
        return EditRates(flip, coll, succ)
