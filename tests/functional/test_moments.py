"""Sums as a monoid (clipcore.functional.moments) and batches of sets (vmap).

* ``clipcore.functional.moments`` is the function, whichever way it is imported; its module is
  ``clipcore.functional._moments`` (no submodule shares the name);
* moments of two halves added (``+``, ``sum``, ``psum`` over a named vmap axis) equal the moments of the
  whole, and the float64 NumPy sums Σ φᵀ φ of the reference feature maps;
* a bank ∪ batch score from moments equals the score of the concatenated rows, and its gradient in the
  batch equals that of the concatenated rows' score — computed by a function that never receives the
  bank's rows (its inputs are the D×D moments and the b batch rows);
* ``vmap`` over a batch of sets equals a loop.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import clipcore.functional as F
from clipcore.functional import _moments

try:
    from reference import sce_numpy as R
except ImportError:  # tests/ collected as a package
    from tests.reference import sce_numpy as R

SIGMA = 3.0
OMEGA = np.random.default_rng(3).normal(size=(10, 12)) / SIGMA


def pairs(n=500, d=10, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(8, d))[rng.integers(0, 8, n)] + 0.2 * rng.normal(size=(n, d))
    return 0.6 * t + rng.normal(size=(n, d)), t


KERNELS = {"cosine": (dict(), R.cosine_features),
           "rff": (dict(kernel="gaussian", omega=OMEGA), lambda a: R.rff_features(a, OMEGA)),
           "rff key": (dict(kernel="gaussian", key=3, rff_features=6, sigma=SIGMA), None)}


@pytest.mark.parametrize("kernel", list(KERNELS))
@pytest.mark.parametrize("backend", ["ffi", "jax"])
def test_halves_add_to_the_whole(kernel, backend):
    kw, phi = KERNELS[kernel]
    x, t = pairs()
    whole = F.moments(x, t, backend=backend, **kw)
    a, b = F.moments(x[:217], t[:217], backend=backend, **kw), F.moments(x[217:], t[217:], backend=backend, **kw)
    thirds = [F.moments(x[i:i + 167], t[i:i + 167], backend=backend, **kw) for i in range(0, 500, 167)]
    for got in (a + b, sum(thirds)):
        assert float(got.n) == 500
        for g, w in zip(got[1:], whole[1:]):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
    if phi is not None:
        pt, px = phi(t), phi(x)
        for g, w in zip(whole[1:], (pt.T @ pt, pt.T @ px, px.T @ px)):
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-11)
    one = F.moments(x[:217], backend=backend, **kw) + F.moments(x[217:], backend=backend, **kw)
    assert one.tt is None and not one.paired
    np.testing.assert_allclose(one.xx, whole.xx, rtol=1e-12, atol=1e-12)


def test_psum_over_a_named_axis_is_the_whole():
    x, t = pairs()
    xs, ts = x.reshape(5, 100, 10), t.reshape(5, 100, 10)
    summed = jax.vmap(lambda a, b: jax.lax.psum(F.moments(a, b), "sets"), axis_name="sets")(xs, ts)
    whole = F.moments(x, t)
    for g, w in zip(summed, whole):
        np.testing.assert_allclose(g[0], w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel", ["cosine", "rff"])
def test_scores_of_moments_equal_the_scores_of_the_rows(kernel):
    kw, _ = KERNELS[kernel]
    x, t = pairs()
    m = F.moments(x[:300], t[:300], **kw) + F.moments(x[300:], t[300:], **kw)
    got, want = F.sce_from_moments(m), F.sce(x, t, **kw)
    for f in ("sce", "text_score", "image_score"):
        np.testing.assert_allclose(getattr(got, f), getattr(want, f), rtol=1e-10)
    for order in (1.0, 2.0, float("inf")):
        np.testing.assert_allclose(F.vendi_from_moments(m, order=order).score, F.vendi(x, order=order, **kw).score,
                                   rtol=1e-10)


@pytest.mark.parametrize("kernel", ["cosine", "rff"])
def test_bank_and_batch_gradient_never_sees_the_bank_rows(kernel):
    kw, _ = KERNELS[kernel]
    x, t = pairs(600)
    bank_x, bank_t, bx, bt = x[:536], t[:536], x[536:], t[536:]
    bank = F.moments(bank_x, bank_t, **kw)

    def update(bank, batch_x, batch_t):
        return F.sce_from_moments(bank + F.moments(batch_x, batch_t, **kw)).log_sce

    step = jax.jit(jax.value_and_grad(update, argnums=1))
    shapes = [a.shape for a in jax.tree.leaves(jax.make_jaxpr(update)(bank, bx, bt).in_avals)]
    assert (536, 10) not in shapes and max(s[0] for s in shapes if s) < 536  # O(b·D² + D³): no bank rows
    value, grad = step(bank, bx, bt)
    want_value, want_grad = jax.value_and_grad(lambda b: F.sce(jnp.concatenate([bank_x, b]), t, **kw).log_sce)(bx)
    np.testing.assert_allclose(value, want_value, rtol=1e-10)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-7, atol=1e-12)


def test_moments_refuse_what_does_not_add():
    x, t = pairs(50)
    with pytest.raises(ValueError, match="^kernel: moments need a finite feature map"):
        F.moments(x, t, kernel="gaussian", sigma=1.0)
    with pytest.raises(ValueError, match="^sigma: moments of different sets add only with one feature map"):
        F.moments(x, t, kernel="gaussian", key=1, rff_features=4)
    with pytest.raises(ValueError, match="^moments: cannot add paired moments"):
        F.moments(x, t) + F.moments(x)
    with pytest.raises(ValueError, match="^moments: covariances need paired moments"):
        F.sce_from_moments(F.moments(x))


@pytest.mark.parametrize("kernel", ["cosine", "rff", "exact", "dual"])
def test_vmap_over_sets_equals_a_loop(kernel):
    rng = np.random.default_rng(4)
    n = 6 if kernel == "dual" else 60
    xs, ts = rng.normal(size=(4, n, 10)), rng.normal(size=(4, 3, 10))[:, rng.integers(0, 3, n)]
    kw = {"cosine": {}, "dual": {}, "rff": dict(kernel="gaussian", omega=OMEGA),
          "exact": dict(kernel="gaussian", sigma=SIGMA)}[kernel]
    batched = jax.jit(jax.vmap(lambda a, b: F.sce(a, b, **kw)))(xs, ts)
    vendi = jax.vmap(lambda a: F.vendi(a, order=2.0, **kw))(xs)
    for i in range(4):
        one = F.sce(xs[i], ts[i], **kw)
        for f in ("sce", "text_score", "image_score", "complement"):
            np.testing.assert_allclose(getattr(batched, f)[i], getattr(one, f), rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(vendi.score[i], F.vendi(xs[i], order=2.0, **kw).score, rtol=1e-10)
    median = jax.vmap(lambda a, b: F.sce(a, b, kernel="gaussian", rff_features=5, key=1))(xs, ts)
    np.testing.assert_allclose(median.sce[2], F.sce(xs[2], ts[2], kernel="gaussian", rff_features=5, key=1).sce,
                               rtol=1e-10)


def test_moments_is_the_function_and_its_module_is_private():
    import importlib
    import sys

    from clipcore.functional import moments

    assert callable(moments) and moments is F.moments and moments is _moments.moments
    assert moments.__module__ == "clipcore.functional._moments"
    assert sys.modules["clipcore.functional._moments"] is _moments
    assert "clipcore.functional.moments" not in sys.modules  # no submodule of that name
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("clipcore.functional.moments")
    x, t = pairs(n=40, d=6)
    m = moments(x, t, kernel="cosine")
    assert isinstance(m, F.Moments)
