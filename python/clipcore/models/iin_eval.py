"""How well a fitted IIN disentangles and edits: probes per factor, reconstruction, edit success.

Probes are scikit-learn ``LogisticRegression`` s on standardised inputs (the
judges of Esser, Rombach & Ommer 2020's attribute edits); host code, run after
:meth:`clipcore.models.IIN.fit`. The same figures are what ``clipcore iin``
prints and writes.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .iin import IIN
from .iin_data import check_attributes
from .iin_select import EditJudge, probe

__all__ = ["IINEvaluation", "probe", "evaluate_iin"]


class IINEvaluation(NamedTuple):
    """Disentanglement and editing figures of a trained IIN on held-out data.

    Attributes:
      names: the K attribute names.
      factor_sizes: K+1 sizes (last = residual).
      reconstruction_error: max over rows of ‖T⁻¹(T(z)) − z‖₂.
      reconstruction_relative: that divided by the largest ‖z‖₂.
      probe_accuracy: ``[K+1, K]`` test accuracy of a logistic regression on
        z̄_f (row f; the last row is the residual) predicting attribute k.
      chance: ``[K]`` majority-class rate of each attribute (test split).
      raw_probe_accuracy: ``[K]`` accuracy of the probes on the original z.
      flip_rate: ``[K]`` fraction of edits of factor F (z̄_F ← mean of the
        target class, the next class cyclically: the other class when binary)
        after which the z-probe of F predicts the target class.
      collateral_rate: ``[K]`` fraction of (edit, other attribute k ≠ F)
        whose z-probe prediction changed.
      success_rate: ``[K]`` fraction of edits with F flipped and no other
        attribute's prediction changed.
      edit_success: mean of ``success_rate``.
    """

    names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    reconstruction_error: float
    reconstruction_relative: float
    probe_accuracy: np.ndarray
    chance: np.ndarray
    raw_probe_accuracy: np.ndarray
    flip_rate: np.ndarray
    collateral_rate: np.ndarray
    success_rate: np.ndarray
    edit_success: float


def evaluate_iin(model: IIN, z_train: Any, a_train: Any, z_test: Any, a_test: Any, *,
                 seed: int = 0) -> IINEvaluation:
    """Probe accuracies, reconstruction and edit success of a fitted IIN.

    Probes (scikit-learn ``LogisticRegression`` on standardised inputs) are
    trained on the train split and scored on the test split: one per
    (factor f, attribute k) on z̄_f, and one per attribute on the original z
    (the edit judges). Each test embedding is edited once per attribute F:
    z̄_F ← class mean (from ``fit``) of the target class ``(a_F + 1) mod C_F``.

    Args:
      model: a fitted :class:`IIN` (``class_means`` set).
      z_train, a_train: ``[n, D]``, ``[n, K]`` probe training data.
      z_test, a_test: ``[m, D]``, ``[m, K]`` held-out data.
      seed: probe seed.

    Returns:
      IINEvaluation.
    """
    xtr = np.asarray(model.check_input(z_train, "z_train"), np.float64)
    xte = np.asarray(model.check_input(z_test, "z_test"), np.float64)
    atr = check_attributes(a_train, xtr.shape[0])
    ate = check_attributes(a_test, xte.shape[0])
    k = len(model.factor_sizes) - 1
    if atr.shape[1] != k or ate.shape[1] != k:
        raise ValueError(f"attributes: {atr.shape[1]} (train) / {ate.shape[1]} (test) columns but the model has K={k}")
    if len(model.class_means) != k:
        raise ValueError("model: no class means; fit it on attributes before evaluating edits")

    ztr = np.asarray(model.encode(xtr), np.float64)
    zte = np.asarray(model.encode(xte), np.float64)
    rec = np.asarray(model.decode(zte), np.float64)
    err = np.linalg.norm(rec - xte, axis=1)
    cuts = np.cumsum(model.factor_sizes)[:-1]
    ftr, fte = np.split(ztr, cuts, axis=1), np.split(zte, cuts, axis=1)
    acc = np.zeros((k + 1, k))
    for f in range(k + 1):
        for kk in range(k):
            acc[f, kk] = probe(seed).fit(ftr[f], atr[:, kk]).score(fte[f], ate[:, kk])
    chance = np.array([np.bincount(ate[:, kk]).max() / ate.shape[0] for kk in range(k)])
    judge = EditJudge(xtr, atr, seed)
    raw = np.array([p.score(xte, ate[:, kk]) for kk, p in enumerate(judge.probes)])
    flip, coll, succ = judge.rates(model, xte, ate)
    scale = float(np.linalg.norm(xte, axis=1).max())
    return IINEvaluation(tuple(model.names), tuple(model.factor_sizes), float(err.max()),
                         float(err.max() / scale) if scale > 0 else float("nan"), acc, chance, raw,
                         flip, coll, succ, float(succ.mean()))
