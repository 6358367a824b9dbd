"""clipcore._pipeline.bootstrap: each replicate's scores equal the float64 NumPy scores of the weighted
covariances Zᵀ diag(w) Z / Σw, with fewer rows than features (the dual n×n form) and with more (primal)."""

from __future__ import annotations

import numpy as np
import pytest

from clipcore._pipeline import bootstrap as B

try:
    from reference import sce_numpy as R
except ImportError:  # tests/ collected as a package
    from tests.reference import sce_numpy as R


def _reference(z, d_text, cos, w):
    """(SCE, text score, image Vendi, CLIPScore) of one replicate: weighted covariances, NumPy float64."""
    wt = w / w.sum()
    c = (z * wt[:, None]).T @ z
    spec = R.sce_primal(covs=(c[:d_text, :d_text], c[:d_text, d_text:], c[d_text:, d_text:]),
                        rtol=R.default_rtol(d_text))
    return spec.sce, spec.text_score, R.renyi(spec.image, 1.0), float(np.sum(w * cos) / w.sum())


@pytest.mark.parametrize("n_prompts,per", [(6, 3), (30, 4)], ids=["dual n<D", "primal n>D"])
def test_replicates_equal_the_numpy_weighted_scores(n_prompts, per):
    rng = np.random.default_rng(n_prompts)
    d_text, d_image = 24, 20
    n = n_prompts * per
    prompt = np.repeat(np.arange(n_prompts), per)
    t = rng.standard_normal((n_prompts, d_text))[prompt] + 0.1 * rng.standard_normal((n, d_text))
    x = 0.5 * t[:, :d_image] + rng.standard_normal((n, d_image))
    z = np.concatenate([t, x], axis=1) / np.sqrt(d_text)
    cos = rng.uniform(0.0, 0.5, n)
    weights = B.draw_prompt_weights([np.arange(n_prompts)], 5, seed=3)[0]
    reps = B.replicate_scores(z, d_text, cos, prompt, weights, clamp=R.CLAMP, desc="test", progress=False)
    for i, wp in enumerate(weights):
        ref = _reference(z, d_text, cos, wp[prompt])
        got = (reps.sce[i], reps.text_score[i], reps.image_score[i], reps.clip_score[i])
        np.testing.assert_allclose(got, ref, rtol=1e-9)
