"""Exact Gaussian SCE where prompts repeat (several images per prompt, issue 18): K_T's kept pairs come from
the distinct prompts' u×u problem (``passes._repeated_pairs`` → ``dual_lowrank.repeated_kept_pairs``); the
scores equal the dense float64 NumPy reference, and rows without repeats keep the n×n route."""

from __future__ import annotations

import numpy as np
import pytest

import clipcore
from clipcore import dual_lowrank as DL
from clipcore._pipeline import passes as P

try:
    from reference import sce_numpy as ref
except ImportError:  # tests/ collected as a package
    from tests.reference import sce_numpy as ref


def data(per_prompt, n=900, d=10, seed=0):
    rng = np.random.default_rng(seed)
    prompts = rng.standard_normal((-(-n // per_prompt), d))
    t = np.repeat(prompts, per_prompt, axis=0)[:n][rng.permutation(n)]
    return t + 0.7 * rng.standard_normal(t.shape), t


@pytest.mark.parametrize("per_prompt,sigma", [(4, 5.0), (4, 0.8), (2, 5.0), (30, 3.0), (1, 3.0)])
def test_repeated_prompts_equal_the_dense_reference(per_prompt, sigma, monkeypatch):
    """Kept rank below the distinct prompts (86 of 225, 89 of 450), all of them (225: M's dense eigh), few (30),
    and no repeats."""
    x, t = data(per_prompt)
    calls = []
    real = DL.repeated_kept_pairs
    monkeypatch.setattr(P, "repeated_kept_pairs", lambda *a, **k: calls.append(1) or real(*a, **k))
    got = clipcore.sce(x, t, kernel="gaussian", sigma=sigma, progress=False)
    want = ref.sce_exact_gaussian(t, x, sigma, ridge=ref.RIDGE)  # the ε = 1e-12 of the pseudo-inverse
    assert got.method == "dual/exact" and got.rank_kept == want.rank
    assert len(calls) == (per_prompt > 1)  # no repeats: the n×n route
    assert got.sce == pytest.approx(want.sce, rel=1e-9)
    assert got.text_score == pytest.approx(want.text_score, rel=1e-9)
    assert got.image_score == pytest.approx(ref.renyi(want.image), rel=1e-9)


def test_distinct_rows_are_grouped_exactly(monkeypatch):
    """passes.distinct_prompts groups equal rows (the groups NumPy's row-wise unique finds), declines where
    more than REPEATED_FRACTION of the rows are distinct, and where two different rows share a key (forced
    here: every key 0) falls back to NumPy's exact row-wise unique."""
    rng = np.random.default_rng(2)
    t = np.repeat(rng.standard_normal((40, 6)).astype(np.float32), 3, axis=0)[rng.permutation(120)]
    want = np.unique(t, axis=0, return_inverse=True)[1].reshape(-1)

    def same_partition(first, inverse):
        assert first.size == 40 and np.array_equal(t, t[first][inverse])
        pairs = {(int(a), int(b)) for a, b in zip(inverse, want)}
        assert len(pairs) == 40  # one-to-one with NumPy's groups

    same_partition(*P.distinct_prompts(t))
    assert P.distinct_prompts(rng.standard_normal((120, 6))) is None
    assert P.distinct_prompts(np.concatenate([t[:50], rng.standard_normal((70, 6))])) is None
    monkeypatch.setattr(P, "row_keys", lambda rows, step: np.zeros(rows.shape[0]))
    same_partition(*P.distinct_prompts(t))


def test_near_diagonal_prompt_block_is_decomposed():
    """A tiny σ makes the prompts' u×u block nearly diagonal with equal diagonal (every prompt has four rows):
    LAPACK's ?syevr (SciPy's default eigh driver) stops there with "Internal Error" on this seed, so the
    dense kept pairs use ?syevd; the scores equal the dense float64 reference (every direction kept)."""
    from scipy.spatial.distance import pdist
    rng = np.random.default_rng(51)
    prompts = rng.standard_normal((150, 2))
    sigma = 0.05 * float(np.median(pdist(prompts)))
    t = np.repeat(prompts, 4, axis=0)[rng.permutation(600)]
    x = t + 0.5 * rng.standard_normal(t.shape)
    got = clipcore.sce(x, t, kernel="gaussian", sigma=sigma, progress=False)
    want = ref.sce_exact_gaussian(t, x, sigma, ridge=ref.RIDGE)
    assert got.method == "dual/exact" and got.rank_kept == want.rank == 150
    assert got.sce == pytest.approx(want.sce, rel=1e-9)
    assert got.text_score == pytest.approx(want.text_score, rel=1e-9)
    assert got.image_score == pytest.approx(ref.renyi(want.image), rel=1e-9)
