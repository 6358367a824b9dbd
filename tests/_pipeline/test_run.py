"""clipcore._pipeline.run: one SCE / Vendi call along a plan (primal D×D, dual n×n, streamed primal, Nyström) —
every path gives the float64 NumPy reference's spectra (tests/reference/sce_numpy.py) and the same entropies,
and names itself in ``method``."""

from __future__ import annotations

import numpy as np
import pytest

from clipcore._options import resolve_execution, resolve_numerics, resolve_nystrom
from clipcore._pipeline import inputs as PI
from clipcore._pipeline import run as RUN
from clipcore._pipeline.plan import Plan
from reference import sce_numpy as R


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.default_rng(3)
    t = rng.standard_normal((400, 8))
    return 0.7 * t + rng.standard_normal((400, 8)), t


def _call(x, t, plan, *, kernel="cosine", convention="paper", monkeypatch=None, **kopts):
    numerics = resolve_numerics(convention=convention)
    kernel_opts = PI.resolve_kernel_options(kernel=kernel, **kopts)
    nys = resolve_nystrom()
    execution = resolve_execution(progress=False, block_size=150)
    with numerics.precision.context():
        if plan.path == "streamed":
            monkeypatch.setattr(PI, "IN_MEMORY_ROWS", 100)
        nonzero = kernel == "cosine"
        inputs = (PI.single_inputs(x, nonzero=nonzero) if t is None
                  else PI.paired_inputs(x, t, nonzero=nonzero, same_dim=kernel == "gaussian"))
        setup = PI.resolve_kernel(kernel_opts, normalize=False, convention=convention, sample=inputs.sample,
                                  dim=inputs.d_images)
        if t is None:
            return RUN.run_vendi(plan, inputs, setup, numerics, nys, execution, kernel_opts.seed, 1.0)
        return RUN.run_sce(plan, inputs, setup, numerics, nys, execution, kernel_opts.seed)


@pytest.mark.parametrize("convention", ["paper", "clip-dissection"])
@pytest.mark.parametrize("path", ["primal", "dual", "streamed"])
def test_sce_paths_give_the_reference(pairs, path, convention, monkeypatch):
    x, t = pairs
    r = _call(x, t, Plan(path), convention=convention, monkeypatch=monkeypatch)
    covs = (R.clip_dissection_covariances(t, x) if convention == "clip-dissection"
            else R.covariances(R.cosine_features(t), R.cosine_features(x)))
    spec = R.sce_primal(covs=covs, rtol=8 * R.EPS32)
    atol = 1e-12  # measured ≤ 1e-16 on every path (the ε ridge moves nothing visible here)
    assert r.n == 400 and r.num_features == 8 and r.rtol == pytest.approx(8 * R.EPS32)
    assert r.method == f"{'dual' if path == 'dual' else 'primal'}/cosine" and r.nystrom is None
    assert r.complement.shape == r.text.shape == r.image.shape == (8,)
    for got, want in ((r.complement, spec.complement), (r.text, spec.text), (r.image, spec.image)):
        np.testing.assert_allclose(got, np.clip(want, 0, None), atol=atol)
    assert r.rank_kept == spec.rank
    assert r.log_sce == pytest.approx(R.log_code_score(spec.complement), rel=1e-7)
    assert r.log_text == pytest.approx(R.log_code_score(spec.text), rel=1e-7)
    assert r.log_image == pytest.approx(R.log_renyi(spec.image, 1.0), rel=1e-9)
    assert sum(r.traces[:2]) == pytest.approx(r.traces[2], rel=1e-10)


@pytest.mark.parametrize("path", ["primal", "dual", "streamed"])
def test_vendi_paths_give_the_reference(pairs, path, monkeypatch):
    x, _ = pairs
    r = _call(x, None, Plan(path), monkeypatch=monkeypatch)
    lam = np.maximum(R.eigvals_desc(R.covariances(R.cosine_features(x), R.cosine_features(x))[2]), 0)
    assert r.eigenvalues.shape == (8,)  # the dual's n eigenvalues cut to the primal dimension
    np.testing.assert_allclose(r.eigenvalues, lam, atol=1e-12)
    assert r.log_score == pytest.approx(R.log_renyi(lam, 1.0), rel=1e-10)
    assert r.method == f"{'dual' if path == 'dual' else 'primal'}/cosine" and r.n == 400 and r.num_features == 8


def test_exact_gaussian_dual_and_the_auto_chosen_nystrom(pairs):
    """The exact kernel runs dual (n eigenvalues, no padding); a plan that chose Nyström by itself carries m."""
    x, t = pairs
    r = _call(x, t, Plan("dual"), kernel="gaussian", sigma=2.0)
    spec = R.sce_exact_gaussian(t, x, 2.0, rtol=400 * R.EPS32, ridge=R.RIDGE)
    assert r.method == "dual/exact" and r.num_features == 400 and r.image.shape == (400,)
    np.testing.assert_allclose(r.complement, np.clip(spec.complement, 0, None), atol=1e-12)
    ny = _call(x, t, Plan("nystrom", landmarks=50), kernel="gaussian", sigma=2.0)
    assert ny.method == "primal/nystrom" and ny.nystrom.asked == 50 and set(ny.estimates) == {
        "projected", "residual", "missing-mass", "renormalised"}
    assert ny.log_sce == ny.estimates["projected"].log_complement and ny.num_features == ny.nystrom.nmap.rank
    v = _call(x, None, Plan("nystrom", landmarks=50), kernel="gaussian", sigma=2.0)
    assert v.method == "primal/nystrom" and v.log_score == v.estimates["projected"].log_image


def test_feature_dim(pairs):
    x, _ = pairs
    cos = PI.resolve_kernel(PI.resolve_kernel_options(kernel="cosine"), normalize=False, convention="paper",
                            sample=x, dim=8)
    rff = PI.resolve_kernel(PI.resolve_kernel_options(kernel="gaussian", sigma=1.0, rff_features=30),
                            normalize=False, convention="paper", sample=x, dim=8)
    exact = PI.resolve_kernel(PI.resolve_kernel_options(kernel="gaussian", sigma=1.0), normalize=False,
                              convention="paper", sample=x, dim=8)
    assert RUN.feature_dim(cos, 8, 400) == 8 and RUN.feature_dim(rff, 8, 400) == 60
    assert RUN.feature_dim(exact, 8, 400) == 400


def test_clip_dissection_in_memory_refuses_a_zero_column(pairs):
    x, t = pairs
    x = x.copy()
    x[:, 5] = 0.0
    x[0, 0] = 1.0  # no zero row
    with pytest.raises(ValueError, match="^images: column 5 has zero norm"):
        _call(x, t, Plan("primal"), convention="clip-dissection")
