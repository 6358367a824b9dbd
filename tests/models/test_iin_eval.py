"""clipcore.models.iin_eval.evaluate_iin on the synthetic set, whose attributes are known by construction."""

from __future__ import annotations

import numpy as np

from clipcore.models.iin_eval import evaluate_iin


def test_synthetic_edit_success_and_disentanglement(synthetic_fit):
    m, ds, ntr = synthetic_fit
    ev = evaluate_iin(m, ds.embeddings[:ntr], ds.attributes[:ntr], ds.embeddings[ntr:], ds.attributes[ntr:])
    assert np.all(ev.success_rate >= 0.9), ev
    assert np.all(ev.collateral_rate <= 0.1), ev
    assert ev.edit_success >= 0.9
    assert ev.reconstruction_error <= 1e-5
    # each factor predicts its own attribute, far better than any other factor or the residual
    acc = ev.probe_accuracy
    assert np.all(np.diag(acc) >= 0.95)
    for k in range(2):
        assert acc[k, k] >= np.delete(acc[:, k], k).max() + 0.2, acc
    assert m.losses[-1] < m.losses[0]
