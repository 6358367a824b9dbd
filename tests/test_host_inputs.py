"""What a user hands the host API (issue 16): torch tensors of any float dtype, traced arrays, paired
sets of two dimensions, and the short repr of results."""

from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest

import clipcore
from clipcore import _validate as V

RNG = np.random.default_rng(3)
X = RNG.standard_normal((40, 8))
T = X + 0.5 * RNG.standard_normal((40, 8))

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
def test_torch_tensors_score_like_numpy(dtype):
    tdt = getattr(torch, dtype)
    xt = torch.tensor(X).to(tdt).requires_grad_(True)  # requires_grad: the host API detaches
    tt = torch.tensor(T).to(tdt)
    # the reference: the same values (rounded to the tensor's dtype) as float64 NumPy arrays, both sides
    # computed in float64
    xr, tr = xt.detach().double().numpy(), tt.double().numpy()
    want = clipcore.sce(xr, tr, dtype="float64")
    got = clipcore.sce(xt, tt, dtype="float64")
    assert got.sce == pytest.approx(want.sce, rel=1e-12)
    assert clipcore.vendi(xt, dtype="float64").score == pytest.approx(clipcore.vendi(xr, dtype="float64").score,
                                                                      rel=1e-12)
    # by default precision follows the tensor's dtype as it follows a NumPy array's (half precision is read
    # as float32): the same values as NumPy rows of that precision score the same
    npdt = np.float64 if dtype == "float64" else np.float32
    xn, tn = xr.astype(npdt), tr.astype(npdt)
    got, want = clipcore.sce(xt, tt), clipcore.sce(xn, tn)
    assert got.dtype == want.dtype == np.dtype(npdt).name
    assert got.sce == pytest.approx(want.sce, rel=1e-12)
    assert clipcore.vendi(xt).score == pytest.approx(clipcore.vendi(xn).score, rel=1e-12)
    assert xt.grad is None  # nothing flowed back into the user's graph


def test_host_api_under_a_tracer_points_to_functional():
    with pytest.raises(TypeError, match=r"clipcore\.functional"):
        jax.jit(lambda a: clipcore.sce(a, T).sce)(X)
    with pytest.raises(TypeError, match=r"clipcore\.functional"):
        jax.grad(lambda a: clipcore.vendi(a).score)(X)


def test_dimension_mismatch_warns_and_still_scores():
    t12 = np.concatenate([T, RNG.standard_normal((40, 4))], axis=1)
    with pytest.warns(V.DimensionMismatchWarning, match="texts: dimension 12 differs from images' 8") as rec:
        r = clipcore.sce(X, t12)
    assert rec[0].filename == __file__  # points at the caller's line
    assert np.isfinite(r.sce)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # equal dimensions: no warning
        clipcore.sce(X, T)


def test_clip_score_dimension_message_names_the_embedding_space_not_the_kernel():
    with pytest.raises(ValueError, match="texts: dimension 12 differs") as err:
        clipcore.clip_score(X, np.ones((40, 12)))
    assert "Gaussian" not in str(err.value) and "CLIP model" in str(err.value)


def test_results_have_a_short_repr():
    r = clipcore.sce(X, T, kernel="gaussian", sigma=2.0, rff_features=8)
    text = repr(r)
    assert len(text) < 200 and f"{r.sce:.6g}" in text and "gaussian" in text
    assert len(repr(clipcore.vendi(X, order=2))) < 200
    ny = clipcore.sce(X, T, kernel="gaussian", sigma=3.0, landmarks=8)
    assert len(repr(ny)) < 200 and len(repr(ny.nystrom)) < 200
    assert ny.nystrom["captured_trace"] == ny.nystrom.captured_trace  # still indexable by name
