"""Derivatives of clipcore.functional's scores, in float64.

* ``jax.grad`` and ``jax.jvp`` of SCE, the text score, Vendi (α = 1, 2, ∞) and RKE — cosine, Gaussian RFF,
  the exact dual — against central finite differences of the same function along random directions
  (rel 1e-5), and against the central finite differences of the float64 NumPy reference
  (tests/reference/sce_numpy.py), which shares no code with clipcore;
* where the scores are not smooth or the textbook derivative blows up, the gradient is finite and is what
  :mod:`clipcore.functional.spectra` says: duplicated rows, a rank-deficient C_TT (repeated prompts),
  eigenvalues below the 1e-10 clamp (derivative 0: SCE's gradient is exactly 0 when S = 0), repeated
  eigenvalues (the limit of the symmetric spectral function's gradient).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import clipcore.functional as F

try:
    from reference import sce_numpy as R
except ImportError:  # tests/ collected as a package
    from tests.reference import sce_numpy as R

SIGMA = 3.0
RTOL = 1e-5


def pairs(n=300, d=8, prompts=None, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(n, d)) if prompts is None else rng.normal(size=(prompts, d))[rng.integers(0, prompts, n)]
    return 0.6 * t + rng.normal(size=(n, d)), t


OMEGA = np.random.default_rng(3).normal(size=(8, 10)) / SIGMA


def central(f, args, i, v, h):
    """(f(args with args[i] + h v) − f(args with args[i] − h v)) / 2h."""
    def at(s):
        a = list(args)
        a[i] = a[i] + s * h * v
        return float(f(*a))
    return (at(1.0) - at(-1.0)) / (2.0 * h)


def directional(f, args, i, v):
    """grad·v (reverse mode) and the jvp along v (forward mode)."""
    g = jax.jit(jax.grad(f, argnums=i))(*args)
    a = [jnp.asarray(x) for x in args]

    def along(s):
        b = list(a)
        b[i] = b[i] + s * v
        return f(*b)

    _, tangent = jax.jvp(along, (0.0,), (1.0,))
    return float(jnp.sum(g * v)), float(tangent), g


# name -> (functional scalar, NumPy reference scalar, n, which arguments to differentiate); the exact and
# dual cases repeat a few prompts (K_T rank-deficient), else n ≤ D would leave S = 0 (nothing to measure)
CASES = {
    "sce cosine": (lambda x, t: F.sce(x, t).sce,
                   lambda x, t: R.sce_primal(R.cosine_features(t), R.cosine_features(x)).sce, 300, (0, 1)),
    "text cosine": (lambda x, t: F.sce(x, t).text_score,
                    lambda x, t: R.sce_primal(R.cosine_features(t), R.cosine_features(x)).text_score, 300, (0, 1)),
    "log sce cosine dual": (lambda x, t: F.sce(x, t).log_sce,
                            lambda x, t: np.log(R.sce_dual(R.cosine_features(t), R.cosine_features(x), size=8,
                                                           ridge=R.RIDGE).sce), 6, (0, 1)),
    "sce rff": (lambda x, t: F.sce(x, t, kernel="gaussian", omega=OMEGA).sce,
                lambda x, t: R.sce_primal(R.rff_features(t, OMEGA), R.rff_features(x, OMEGA)).sce, 300, (0, 1)),
    "text rff": (lambda x, t: F.sce(x, t, kernel="gaussian", omega=OMEGA).text_score,
                 lambda x, t: R.sce_primal(R.rff_features(t, OMEGA), R.rff_features(x, OMEGA)).text_score, 300,
                 (0, 1)),
    "sce exact": (lambda x, t: F.sce(x, t, kernel="gaussian", sigma=SIGMA).sce,
                  lambda x, t: R.sce_exact_gaussian(t, x, SIGMA, ridge=R.RIDGE).sce, 60, (0, 1)),
    "text exact": (lambda x, t: F.sce(x, t, kernel="gaussian", sigma=SIGMA).text_score,
                   lambda x, t: R.sce_exact_gaussian(t, x, SIGMA, ridge=R.RIDGE).text_score, 60, (0, 1)),
    "vendi 1": (lambda x, t: F.vendi(x).score, lambda x, t: R.vendi_of_features(R.cosine_features(x), 1.0), 300, (0,)),
    "vendi 2": (lambda x, t: F.vendi(x, order=2.0).score,
                lambda x, t: R.vendi_of_features(R.cosine_features(x), 2.0), 300, (0,)),
    "vendi inf": (lambda x, t: F.vendi(x, order=float("inf")).score,
                  lambda x, t: R.vendi_of_features(R.cosine_features(x), np.inf), 300, (0,)),
    "rke rff": (lambda x, t: F.rke(x, kernel="gaussian", omega=OMEGA).score,
                lambda x, t: R.vendi_of_features(R.rff_features(x, OMEGA), 2.0), 300, (0,)),
    "vendi exact": (lambda x, t: F.vendi(x, kernel="gaussian", sigma=SIGMA).score,
                    lambda x, t: R.vendi_of_kernel(R.gaussian_kernel(x, x, SIGMA), 1.0), 60, (0,)),
    "rke exact": (lambda x, t: F.rke(x, kernel="gaussian", sigma=SIGMA).score,
                  lambda x, t: R.rke_frobenius(R.gaussian_kernel(x, x, SIGMA)), 60, (0,)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_grad_and_jvp_match_finite_differences_and_the_reference(name):
    f, ref, n, which = CASES[name]
    x, t = pairs(n, prompts=3 if "dual" in name else 5 if "exact" in name else None)
    rng = np.random.default_rng(11)
    for i in which:
        v = rng.normal(size=x.shape)
        gv, jv, g = directional(f, (x, t), i, v)
        assert np.all(np.isfinite(g))
        fd = central(f, (x, t), i, v, 1e-5)
        fd_ref = central(ref, (x, t), i, v, 1e-5)
        assert abs(fd) > 1e-8, "the direction must move the score"
        np.testing.assert_allclose(gv, fd, rtol=RTOL, err_msg=f"{name}: grad vs finite differences, arg {i}")
        np.testing.assert_allclose(jv, gv, rtol=1e-10, err_msg=f"{name}: jvp vs grad, arg {i}")
        np.testing.assert_allclose(gv, fd_ref, rtol=RTOL, err_msg=f"{name}: grad vs the reference's FD, arg {i}")


@pytest.mark.parametrize("kernel", ["rff", "exact"])
def test_gradient_in_sigma(kernel):
    """σ traced: d score / dσ (ω = z / σ for RFF drawn from a key) against finite differences in σ."""
    x, t = pairs(60 if kernel == "exact" else 300, prompts=5)
    kw = dict(kernel="gaussian", rff_features=10, key=2) if kernel == "rff" else dict(kernel="gaussian")

    def f(s):
        return F.sce(x, t, sigma=s, **kw).sce

    s0 = jnp.asarray(SIGMA)
    g = jax.grad(f)(s0)
    fd = (f(s0 + 1e-5) - f(s0 - 1e-5)) / 2e-5
    np.testing.assert_allclose(g, fd, rtol=RTOL)
    if kernel == "exact":
        ref = lambda s: R.sce_exact_gaussian(t, x, s, ridge=R.RIDGE).sce  # noqa: E731
        np.testing.assert_allclose(g, (ref(SIGMA + 1e-5) - ref(SIGMA - 1e-5)) / 2e-5, rtol=RTOL)


def test_median_sigma_is_not_differentiated():
    """σ = None: the median heuristic is stop_gradient-ed; the gradient equals the one at that σ held fixed."""
    x, t = pairs(60, prompts=5)
    sigma = float(F.median_sigma(jnp.asarray(x)))
    g_auto = jax.grad(lambda a: F.sce(a, t, kernel="gaussian").sce)(x)
    g_fixed = jax.grad(lambda a: F.sce(a, t, kernel="gaussian", sigma=sigma).sce)(x)
    np.testing.assert_allclose(g_auto, g_fixed, rtol=1e-10, atol=1e-14)


def test_rank_deficient_text_covariance():
    """5 prompts repeated over 300 rows: C_TT has rank 5 and a 3-fold zero eigenvalue (eigh's derivative:
    1/(w_i − w_j) = ∞, NaN gradients). The gradient is finite and is the fixed-rank pseudo-inverse's, so it
    matches finite differences in every direction (a step that splits duplicated prompts adds O(h²)
    eigenvalues, far below the cutoff)."""
    x, t = pairs(300, prompts=5)
    assert int(F.sce(x, t).rank) == 5
    rng = np.random.default_rng(4)
    for f in (lambda a, b: F.sce(a, b).log_sce, lambda a, b: F.sce(a, b).text_score,
              lambda a, b: F.sce(a, b, ridge=1e-3).sce, lambda a, b: F.sce(a, b, kernel="gaussian", omega=OMEGA).sce):
        for i in (0, 1):
            v = rng.normal(size=x.shape)
            gv, _, g = directional(f, (x, t), i, v)
            assert np.all(np.isfinite(g))
            np.testing.assert_allclose(gv, central(f, (x, t), i, v, 1e-6), rtol=RTOL)


def test_rank_deficient_text_gram_in_the_dual():
    """The dual with repeated prompts: K_T (n × n) has a large null space; the dual's rule stays finite."""
    x, t = pairs(40, prompts=4)
    rng = np.random.default_rng(5)
    for f in (lambda a, b: F.sce(a, b, kernel="gaussian", sigma=SIGMA).sce,
              lambda a, b: F.sce(a[:6], b[:6], method="dual").text_score,
              lambda a, b: F.sce(a, b, kernel="gaussian", sigma=SIGMA, ridge=1e-3).sce):
        for i in (0, 1):
            v = rng.normal(size=x.shape)
            gv, _, g = directional(f, (x, t), i, v)
            assert np.all(np.isfinite(g))
            np.testing.assert_allclose(gv, central(f, (x, t), i, v, 1e-6), rtol=RTOL, atol=1e-10)


def test_duplicated_rows():
    """Every image twice (and the exact kernel's k = 1 between copies): finite gradients, equal on the two
    copies of a row (the score is symmetric in them), and the finite differences'."""
    rng = np.random.default_rng(6)
    for n, f in ((150, lambda a, b: F.sce(a, b).sce), (150, lambda a, b: F.vendi(a, order=2.0).score),
                 (30, lambda a, b: F.sce(a, b, kernel="gaussian", sigma=SIGMA).sce)):
        x, t = pairs(n, prompts=5)
        x2, t2 = np.concatenate([x, x]), np.concatenate([t, t])
        v = rng.normal(size=x2.shape)
        gv, _, g = directional(f, (x2, t2), 0, v)
        assert np.all(np.isfinite(g))
        np.testing.assert_allclose(g[:n], g[n:], rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(gv, central(f, (x2, t2), 0, v, 1e-6), rtol=RTOL, atol=1e-10)


def test_eigenvalues_below_the_clamp_contribute_nothing():
    """images = texts: S = C_XX − C_XTC_TT⁺C_TX = 0, every eigenvalue of S is below the 1e-10 clamp, so SCE is
    the constant exp(−D·1e-10·log(1/D)) and its gradient is exactly 0 (not NaN); the text score (R = C_XX)
    keeps its finite-difference gradient. A set of 4 distinct points in 8 dimensions: 4 eigenvalues of C_XX
    are 0, clamped; Vendi's gradient is finite and the finite differences' (the step adds O(h²) ≪ 1e-10)."""
    x, _ = pairs(300)
    out = F.sce(x, x)
    assert float(jnp.max(out.complement)) < 1e-10
    g = jax.grad(lambda a: F.sce(a, a).sce)(x)
    np.testing.assert_array_equal(np.asarray(g), 0.0)
    v = np.random.default_rng(7).normal(size=x.shape)
    f = lambda a, b: F.sce(a, b).text_score  # noqa: E731
    gv, _, _ = directional(f, (x, x), 0, v)
    np.testing.assert_allclose(gv, central(lambda a, b: F.sce(a, b).text_score, (x, x), 0, v, 1e-6), rtol=RTOL)
    pts = np.repeat(x[:4], 20, axis=0)
    assert int(np.sum(np.asarray(F.vendi(pts).eigenvalues) < 1e-10)) == 4
    f = lambda a, b: F.vendi(a).score  # noqa: E731
    gv, _, g = directional(f, (pts, pts), 0, v := np.random.default_rng(8).normal(size=pts.shape))
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(gv, central(f, (pts, pts), 0, v, 1e-7), rtol=RTOL)


def test_repeated_eigenvalues():
    """Vendi and SCE are symmetric functions of the spectrum, smooth where eigenvalues coincide, with no
    1/(λ_i − λ_j) in their derivatives. (1) C = V diag(a, a, a, a, b, b, b, b) Vᵀ, two 4-fold eigenvalues:
    the gradient of log Vendi in C is the closed form −(log C + I) (α = 1) and −2C / tr C² (α = 2).
    (2) ±e_1..±e_4 twenty times, ±e_5..±e_8 ten times: C_XX = diag(1/6 ×4, 1/12 ×4); SCE's gradient in the
    images is finite and the FD's. (3) At C_XX = I/8 (the maximum of every Rényi entropy at trace 1) Vendi's
    gradient in the images is 0."""
    v = np.linalg.qr(np.random.default_rng(9).normal(size=(8, 8)))[0]
    c = (v * np.array([1 / 6] * 4 + [1 / 12] * 4)) @ v.T
    g1 = jax.grad(lambda m: F.vendi_from_covariance(m).log_score)(jnp.asarray(c))
    log_c = (v * np.log(np.array([1 / 6] * 4 + [1 / 12] * 4))) @ v.T
    g1 = 0.5 * (g1 + g1.T)  # the solver reads one triangle; the symmetric part is the gradient
    np.testing.assert_allclose(g1, -(log_c + np.eye(8)), atol=1e-10)
    g2 = jax.grad(lambda m: F.vendi_from_covariance(m, order=2.0).log_score)(jnp.asarray(c))
    np.testing.assert_allclose(0.5 * (g2 + g2.T), -2 * c / np.trace(c @ c), atol=1e-10)
    e = np.eye(8)
    x = np.concatenate([e[:4], -e[:4]] * 20 + [e[4:], -e[4:]] * 10)
    t = x + 0.3 * np.random.default_rng(9).normal(size=x.shape)
    np.testing.assert_allclose(np.asarray(F.vendi(x).eigenvalues), [1 / 6] * 4 + [1 / 12] * 4, rtol=1e-12)
    f = lambda a, b: F.sce(a, b).sce  # noqa: E731
    d = np.random.default_rng(10).normal(size=x.shape)
    gv, _, g = directional(f, (x, t), 0, d)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(gv, central(f, (x, t), 0, d, 1e-6), rtol=RTOL)
    uniform = np.concatenate([e, -e] * 10)
    for order in (1.0, 2.0):
        g = jax.grad(lambda a: F.vendi(a, order=order).score)(uniform)
        np.testing.assert_allclose(np.asarray(g), 0.0, atol=1e-12)


def test_vmap_of_grad_equals_a_loop():
    rng = np.random.default_rng(12)
    xs, ts = rng.normal(size=(3, 50, 6)), rng.normal(size=(3, 50, 6))
    f = jax.grad(lambda a, b: F.sce(a, b).log_sce)
    batched = jax.jit(jax.vmap(f))(xs, ts)
    for i in range(3):
        np.testing.assert_allclose(batched[i], f(xs[i], ts[i]), rtol=1e-10, atol=1e-14)
