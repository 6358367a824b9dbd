"""clipcore.functional.conditional_vendi: the exact dual form of Conditional / Information Vendi as a pure
function (issue 19).

Against the host clipcore.conditional_vendi (float64, 1e-9) on both kernels, several orders and a
truncation, the σ heuristics included (the texts' over distinct prompts); against the independent NumPy
reference (tests/reference/cond_vendi_numpy.py); under jit; vmap over a batch of sets equals a loop; the
gradient (images, texts and a traced σ) is finite and checked by jax.test_util.check_grads against finite
differences at a generic point; options refused with their names.

conftest.py enables x64: everything here is float64 unless a test says otherwise.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import clipcore
import clipcore.functional as F

try:
    from reference import cond_vendi_numpy as CR
except ImportError:  # tests/ collected as a package
    from tests.reference import cond_vendi_numpy as CR

pytestmark = pytest.mark.filterwarnings("ignore::clipcore._validate.DimensionMismatchWarning")

TOL = 1e-9
INF = float("inf")
FIELDS = ("conditional_vendi", "information_vendi", "conditional_entropy", "mutual_information", "joint_entropy",
          "image_entropy", "text_entropy")


def pairs(n=120, dx=6, dt=4, prompts=12, seed=0):
    """Repeated prompts (k images each) and images that depend on them."""
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(prompts, dt))[rng.integers(0, prompts, n)]
    x = np.concatenate([t, rng.normal(size=(n, dx - dt))], 1) + 0.7 * rng.normal(size=(n, dx))
    return x, t


def assert_equal_to_host(got, want, tol=TOL):
    for f in FIELDS:
        assert float(getattr(got, f)) == pytest.approx(getattr(want, f), rel=tol, abs=tol), f


@pytest.mark.parametrize("kernel, kw", [
    ("gaussian", dict(order=1.0)),
    ("gaussian", dict(order=2.0)),
    ("gaussian", dict(order=0.5)),
    ("gaussian", dict(order=INF)),
    ("gaussian", dict(order=2.0, top_k=20)),
    ("gaussian", dict(order=1.0, sigma=(2.0, 1.5), clamp=1e-10)),
    ("cosine", dict(order=1.0)),
    ("cosine", dict(order=3.0, top_k=7)),
], ids=lambda v: str(v))
def test_equals_the_host_function(kernel, kw):
    x, t = pairs()
    want = clipcore.conditional_vendi(x, t, kernel=kernel, dtype="float64", method="dual", **kw)
    got = jax.jit(lambda a, b: F.conditional_vendi(a, b, kernel=kernel, **kw))(x, t)
    assert_equal_to_host(got, want)
    if kernel == "gaussian":  # the σ heuristics are the host's (texts: over the distinct prompts)
        assert float(got.sigma_images) == pytest.approx(want.sigma_images, rel=1e-12)
        assert float(got.sigma_texts) == pytest.approx(want.sigma_texts, rel=1e-12)
    else:
        assert got.sigma_images is None and got.sigma_texts is None


def test_equals_the_numpy_reference():
    x, t = pairs(seed=1)
    for order in (1, 2, 0.5, "inf"):
        got = F.conditional_vendi(x, t, sigma=(2.5, 1.2), order=INF if order == "inf" else order)
        want = CR.entropies(x, t, sigma_x=2.5, sigma_t=1.2, order=order, rank_cutoff=True)
        assert float(got.conditional_vendi) == pytest.approx(want["cond_vendi"], rel=TOL)
        assert float(got.information_vendi) == pytest.approx(want["info_vendi"], rel=TOL)
        assert float(got.joint_entropy) == pytest.approx(want["H_XT"], rel=TOL)


def test_distinct_median_sigma_matches_the_host_heuristic():
    rng = np.random.default_rng(2)
    prompts = rng.normal(size=(30, 5))
    t = prompts[rng.integers(0, 30, 2600)]  # more rows than the 2000 sampled; prompts repeat ~85 times
    from clipcore.kernels import median_sigma

    sample = t[np.sort(np.random.default_rng(0).choice(2600, 2000, replace=False))]
    want = median_sigma(np.unique(sample, axis=0))
    assert float(jax.jit(F.distinct_median_sigma)(t)) == pytest.approx(want, rel=1e-12)
    assert float(F.median_sigma(t)) != pytest.approx(want, rel=1e-3)  # the repeats would move it
    assert np.isnan(float(F.distinct_median_sigma(np.ones((5, 3)))))  # one distinct prompt: no bandwidth


def test_vmap_over_a_batch_of_sets_equals_a_loop():
    sets = [pairs(n=60, seed=s) for s in range(4)]
    xs, ts = (np.stack(a) for a in zip(*sets))
    fn = lambda a, b: F.conditional_vendi(a, b, sigma=(2.0, 1.5), order=1.0)  # noqa: E731
    batched = jax.jit(jax.vmap(fn))(xs, ts)
    assert batched.conditional_vendi.shape == (4,)
    for k, (x, t) in enumerate(sets):
        one = fn(x, t)
        for f in FIELDS:
            assert float(getattr(batched, f)[k]) == pytest.approx(float(getattr(one, f)), rel=1e-12, abs=1e-12), f
    # the σ heuristic batches too (each set's own)
    auto = jax.vmap(lambda a, b: F.conditional_vendi(a, b))(xs, ts)
    for k, (x, t) in enumerate(sets):
        want = clipcore.conditional_vendi(x, t, dtype="float64")
        assert float(auto.conditional_vendi[k]) == pytest.approx(want.conditional_vendi, rel=TOL)


@pytest.mark.parametrize("kernel, order", [("gaussian", 1.0), ("gaussian", 2.0), ("cosine", 1.0)])
def test_gradient_checked_against_finite_differences(kernel, order):
    x, t = pairs(n=40, seed=3)
    sig = dict(sigma=(2.2, 1.7)) if kernel == "gaussian" else {}

    def loss(a, b):
        s = F.conditional_vendi(a, b, kernel=kernel, order=order, **sig)
        return s.conditional_entropy + 0.5 * s.mutual_information

    g = jax.jit(jax.grad(loss, argnums=(0, 1)))(x, t)
    assert all(np.all(np.isfinite(np.asarray(a))) for a in g)
    assert float(jnp.linalg.norm(g[0])) > 0 and float(jnp.linalg.norm(g[1])) > 0
    check_grads(loss, (x, t), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)


def test_gradient_in_a_traced_sigma():
    x, t = pairs(n=40, seed=4)

    def h(s):
        return F.conditional_vendi(x, t, sigma=(s, 1.3)).conditional_entropy

    check_grads(h, (jnp.asarray(2.0),), order=1, modes=("rev", "fwd"), atol=1e-7, rtol=1e-7)
    # the heuristic σ is a statistic of the data: not differentiated
    g = jax.grad(lambda a: F.conditional_vendi(a, t).conditional_entropy)(x)
    fixed = (float(F.median_sigma(x)), float(F.distinct_median_sigma(t)))
    g_fixed = jax.grad(lambda a: F.conditional_vendi(a, t, sigma=fixed).conditional_entropy)(x)
    np.testing.assert_allclose(np.asarray(g), np.asarray(g_fixed), rtol=1e-10, atol=1e-12)


def test_float32_agrees_with_float64():
    x, t = pairs(seed=5)
    f64 = F.conditional_vendi(x, t)
    f32 = F.conditional_vendi(x, t, dtype="float32")
    assert float(f32.conditional_vendi) == pytest.approx(float(f64.conditional_vendi), rel=1e-5)
    assert float(f32.information_vendi) == pytest.approx(float(f64.information_vendi), rel=1e-5)


@pytest.mark.parametrize("kwargs, match", [
    (dict(images=np.ones(5), texts=np.ones((5, 2))), "images: expected a non-empty 2-D array"),
    (dict(texts=np.ones((7, 2))), "texts: 7 rows but images has"),
    (dict(kernel="rbf"), "kernel"),
    (dict(order=0), "order"),
    (dict(top_k=61), "top_k: expected at most n = 60"),
    (dict(top_k=0), "top_k"),
    (dict(sigma=-1.0), "sigma"),
    (dict(sigma=(1.0, 2.0, 3.0)), "sigma: expected a number or a pair"),
    (dict(kernel="cosine", sigma=1.0), "sigma: only used by kernel='gaussian'"),
    (dict(clamp=-1.0), "clamp"),
    (dict(dtype="float16"), "dtype"),
])
def test_bad_options_are_named(kwargs, match):
    x, t = pairs(n=60)
    args = dict(images=x, texts=t)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        F.conditional_vendi(args.pop("images"), args.pop("texts"), **args)
