"""clipcore.functional's values: jit(functional.sce / vendi / rke / clip_score) equal the host API
(float64: rel 1e-9) and the independent float64 NumPy reference (tests/reference/sce_numpy.py); options
are refused with their names; a second call with the same shapes compiles nothing.

conftest.py enables x64, so everything here is float64 unless a test says otherwise.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import clipcore
import clipcore.functional as F

try:
    from reference import sce_numpy as R
except ImportError:  # tests/ collected as a package
    from tests.reference import sce_numpy as R

RTOL = 1e-9
SIGMA = 3.0


def pairs(n=400, d=12, prompts=None, seed=0):
    rng = np.random.default_rng(seed)
    # prompts: a few prompts, repeated (C_TT / K_T rank-deficient, as in practice)
    t = rng.normal(size=(n, d)) if prompts is None else rng.normal(size=(prompts, d))[rng.integers(0, prompts, n)]
    x = 0.6 * t + rng.normal(size=(n, d))
    return x, t


def omega(d=12, freq=15, seed=3):
    return np.random.default_rng(seed).normal(size=(d, freq)) / SIGMA


def host_sce(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", clipcore.DegenerateWarning)
        return clipcore.sce(*args, progress=False, **kwargs)


def close(a, b, rtol=RTOL, atol=0.0):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=rtol, atol=atol)


def check_sce(got: F.SCEScores, want) -> None:
    close(got.sce, want.sce)
    close(got.text_score, want.text_score)
    close(got.image_score, want.image_score)
    close(got.log_sce, np.log(want.sce), atol=1e-12)
    close(got.complement, want.complement_eigenvalues, atol=1e-12)
    close(got.text, want.text_eigenvalues, atol=1e-12)
    close(got.image, want.image_eigenvalues, atol=1e-12)


SCE_CASES = {
    "cosine primal": (dict(), dict(), 400),
    "cosine dual": (dict(), dict(), 10),
    "cosine ridge": (dict(ridge=0.05), dict(ridge=0.05), 400),
    "cosine rtol clamp": (dict(rtol=1e-3, clamp=None), dict(rtol=1e-3, clamp=None), 400),
    "rff omega": (dict(kernel="gaussian", omega=omega()), dict(kernel="gaussian", omega=omega()), 400),
    "rff key sigma": (dict(kernel="gaussian", key=4, rff_features=15, sigma=SIGMA),
                      dict(kernel="gaussian", key=4, rff_features=15, sigma=SIGMA), 400),
    "rff key median": (dict(kernel="gaussian", key=5, rff_features=15), dict(kernel="gaussian", key=5,
                                                                              rff_features=15), 400),
    "rff dual": (dict(kernel="gaussian", omega=omega()), dict(kernel="gaussian", omega=omega()), 20),
    "exact sigma": (dict(kernel="gaussian", sigma=SIGMA), dict(kernel="gaussian", sigma=SIGMA), 120),
    "exact median": (dict(kernel="gaussian"), dict(kernel="gaussian"), 120),
}


@pytest.mark.parametrize("case", list(SCE_CASES))
def test_jit_sce_equals_the_host_api(case):
    fkw, hkw, n = SCE_CASES[case]
    x, t = pairs(n, prompts=6)
    got = jax.jit(lambda a, b: F.sce(a, b, **fkw))(x, t)
    want = host_sce(x, t, **hkw)
    check_sce(got, want)
    assert int(got.rank) == want.rank_kept
    check_sce(F.sce(x, t, **fkw), want)  # eager too


def test_sce_equals_the_numpy_reference():
    x, t = pairs(400)
    pt, px = R.cosine_features(t), R.cosine_features(x)
    spec = R.sce_primal(pt, px)
    got = jax.jit(F.sce)(x, t)
    close(got.sce, spec.sce)
    close(got.text_score, spec.text_score)
    close(got.image_score, R.renyi(spec.image, 1.0))
    close(got.complement, np.maximum(spec.complement, 0), atol=1e-13)
    # dual (n < d): the reference's dual with the primal's ε, padded to d
    xs, ts = pairs(8, d=12)
    dual = R.sce_dual(R.cosine_features(ts), R.cosine_features(xs), size=12, ridge=R.RIDGE)
    close(jax.jit(F.sce)(xs, ts).sce, dual.sce)
    # RFF and the exact Gaussian kernel
    om = omega()
    spec = R.sce_primal(R.rff_features(t, om), R.rff_features(x, om))
    close(F.sce(x, t, kernel="gaussian", omega=om).sce, spec.sce)
    xe, te = pairs(120, prompts=6)
    ex = R.sce_exact_gaussian(te, xe, SIGMA, ridge=R.RIDGE)
    got = jax.jit(lambda a, b: F.sce(a, b, kernel="gaussian", sigma=SIGMA))(xe, te)
    close(got.sce, ex.sce, rtol=1e-8)
    close(got.text_score, ex.text_score, rtol=1e-8)


def test_median_sigma_is_the_host_heuristic():
    x, _ = pairs(2500)
    close(F.median_sigma(jnp.asarray(x)), clipcore.median_sigma(x), rtol=1e-12)
    close(jax.jit(F.median_sigma)(jnp.asarray(x[:50])), clipcore.median_sigma(x[:50]), rtol=1e-12)


@pytest.mark.parametrize("order", [1.0, 2.0, float("inf"), 0.5])
@pytest.mark.parametrize("kernel", ["cosine", "rff", "exact", "cosine dual"])
def test_vendi_equals_the_host_api_and_the_reference(order, kernel):
    x, _ = pairs(8 if kernel == "cosine dual" else 150)
    kw = {"cosine": {}, "cosine dual": {}, "rff": dict(kernel="gaussian", omega=omega()),
          "exact": dict(kernel="gaussian", sigma=SIGMA)}[kernel]
    got = jax.jit(lambda a: F.vendi(a, order=order, **kw))(x)
    want = clipcore.vendi(x, order=order, method="dual" if kernel == "exact" else "auto", progress=False, **kw)
    close(got.score, want.score)
    close(got.eigenvalues, want.eigenvalues, atol=1e-12)
    if kernel == "cosine":
        close(got.score, R.vendi_of_features(R.cosine_features(x), order))
    elif kernel == "rff":
        close(got.score, R.vendi_of_features(R.rff_features(x, omega()), order))
    elif kernel == "exact":
        close(got.score, R.vendi_of_kernel(R.gaussian_kernel(x, x, SIGMA), order), rtol=1e-8)
    if order == 2.0:
        close(F.rke(x, **kw).score, got.score, rtol=1e-12)


def test_vendi_without_clamp_is_the_vendi_score_convention():
    x, _ = pairs(150)
    for order in (1.0, 2.0):
        got = F.vendi(x, order=order, clamp=None)
        close(got.score, R.vendi_of_features(R.cosine_features(x), order, clamp=None))


@pytest.mark.parametrize("variant", ["hessel", "torchmetrics"])
def test_clip_score_equals_the_host_tables(variant):
    rng = np.random.default_rng(1)
    x, t = rng.normal(size=(50, 8)), rng.normal(size=(50, 8))  # many negative cosines
    got = jax.jit(lambda a, b: F.clip_score(a, b, variant=variant))(x, t)
    want = clipcore.clip_score(x, t, variant=variant)
    close(got.score, want.score, rtol=1e-12)
    close(got.per_sample, want.per_sample, rtol=1e-12, atol=1e-14)
    close(got.cosines, want.cosines, rtol=1e-12, atol=1e-14)
    cos = np.sum(R.l2_normalize_rows(x) * R.l2_normalize_rows(t), axis=1)
    w = 2.5 if variant == "hessel" else 100.0
    close(got.score, np.mean(w * np.maximum(cos, 0)) if variant == "hessel" else max(np.mean(w * cos), 0.0))


def test_float32_features_with_x64_equal_the_host_float32_path():
    x, t = pairs(400)
    got = jax.jit(lambda a, b: F.sce(a, b, dtype="float32"))(x, t)
    want = host_sce(x, t, dtype="float32")
    check_sce(got, want)
    assert got.sce.dtype == jnp.float64


def test_results_are_pytrees_and_moments_add():
    x, t = pairs(400)
    out = jax.jit(F.sce)(x, t)
    leaves = jax.tree.leaves(out)
    assert len(leaves) == len(F.SCEScores._fields)
    assert out.complement.shape == (12,) and out.sce.shape == ()


def test_second_call_with_the_same_shapes_compiles_nothing():
    x, t = pairs(400)
    x2, t2 = pairs(400, seed=7)
    for fn in (jax.jit(lambda a, b: F.sce(a, b)), jax.jit(lambda a, b: F.sce(a, b, kernel="gaussian", omega=omega())),
               jax.jit(jax.grad(lambda a, b: F.sce(a, b).log_sce)),
               jax.jit(lambda a, b: F.vendi(a, order=2.0))):
        first = fn(x, t)
        assert fn._cache_size() == 1
        second = fn(x2, t2)
        assert fn._cache_size() == 1
        assert not np.allclose(jax.tree.leaves(first)[0], jax.tree.leaves(second)[0])


BAD = [
    (dict(kernel="rbf"), "^kernel: "),
    (dict(sigma=1.0), "^sigma: only used by kernel='gaussian'"),
    (dict(kernel="gaussian", key=1), "^key: only used to draw RFF frequencies"),
    (dict(kernel="gaussian", omega=omega(), key=1), "^key: pass either omega= or key="),
    (dict(kernel="gaussian", omega=omega(), rff_features=7), "^omega: has 15 frequencies"),
    (dict(kernel="gaussian", sigma=-1.0), "^sigma: "),
    (dict(kernel="gaussian", rff_features=0), "^rff_features: "),
    (dict(kernel="gaussian", sigma=1.0, method="primal"), "^method: the exact Gaussian kernel"),
    (dict(method="bogus"), "^method: "),
    (dict(clamp=-1.0), "^clamp: "),
    (dict(ridge=-0.1), "^ridge: "),
    (dict(rtol=-1.0), "^rtol: "),
    (dict(dtype="int8"), "^dtype: "),
    (dict(key="seed", kernel="gaussian", rff_features=4), "^key: "),
]


@pytest.mark.parametrize("kwargs,match", BAD, ids=[str(b[0]) for b in BAD])
def test_invalid_options_are_refused_by_name(kwargs, match):
    x, t = pairs(40)
    with pytest.raises(ValueError, match=match):
        F.sce(x, t, **kwargs)


def test_invalid_shapes_and_orders_are_refused_by_name():
    x, t = pairs(40)
    with pytest.raises(ValueError, match="^texts: 39 rows but images has 40"):
        F.sce(x, t[:39])
    with pytest.raises(ValueError, match="^images: expected a non-empty 2-D array"):
        F.sce(x[0], t)
    with pytest.raises(ValueError, match="^texts: dimension 11 differs"):
        F.sce(x, t[:, :11], kernel="gaussian", sigma=1.0)
    with pytest.raises(ValueError, match="^order: "):
        F.vendi(x, order=0.0)
    with pytest.raises(ValueError, match="^order: rke is the order-2"):
        F.rke(x, order=3.0)
    with pytest.raises(ValueError, match="^variant: "):
        F.clip_score(x, t, variant="nope")
