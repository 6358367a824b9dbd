"""clipcore.models.mds_eval.run_mds (the body of `clipcore mds`) against float64 NumPy references."""

import numpy as np
import pytest

from clipcore.models.mds_eval import run_mds
from reference import mds_numpy as ref

from .helpers import lifted_pairs


def clipcore_run_mds(*args, **kw):
    return run_mds(*args, progress=False, **kw)


@pytest.fixture(scope="module")
def pairs():
    u, v = (a.astype(np.float32) for a in lifted_pairs(400, seed=1))
    return u.astype(np.float64), v.astype(np.float64)


def test_run_mds_checks_the_holdout_fraction(pairs):
    u, v = pairs
    with pytest.raises(ValueError, match=r"^holdout: expected a fraction in \[0, 1\)"):
        clipcore_run_mds(u, v, [6], ["pca"], holdout=1.0)
    with pytest.raises(ValueError, match=r"^holdout: 0.001 of 400 pairs leaves 0 held out"):
        clipcore_run_mds(u, v, [6], ["pca"], holdout=0.001)


def test_run_mds_checks_dims_methods_and_pairs(pairs):
    u, v = pairs
    with pytest.raises(ValueError, match=r"^dims: D'=96 must be smaller than the input dimension D=96"):
        clipcore_run_mds(u, v, [6, 96], ["pca"])
    with pytest.raises(ValueError, match=r"^method: unknown method 'tsne'"):
        clipcore_run_mds(u, v, [6], ["pca", "tsne"])
    with pytest.raises(ValueError, match=r"^texts: shape \(399, 96\) but images has \(400, 96\)"):
        clipcore_run_mds(u, v[:399], [6], ["pca"])


def test_run_mds_pca_and_random_match_numpy(pairs):
    """PCA (NumPy SVD of the fitted pairs) and the seeded Gaussian projection, in-sample and held out."""
    u, v = pairs
    k, seed = 5, 2
    out = clipcore_run_mds(u, v, [k], ["pca", "random"], holdout=0.2, seed=seed, ks=(1, 5))
    test = np.asarray(out["holdout"]["indices"])
    train = np.setdiff1d(np.arange(400), test)
    assert test.size == 80 and out["n"] == 320 and out["d"] == 96
    z = np.concatenate([u[train], v[train]])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    zt = np.concatenate([u[test], v[test]])
    zt = zt / np.linalg.norm(zt, axis=1, keepdims=True)
    mu = z.mean(axis=0)
    _, _, vt = np.linalg.svd(z - mu, full_matrices=False)
    maps = {"pca": lambda a: (a - mu) @ vt[:k].T,
            "random": lambda a: a @ (np.random.default_rng(seed).standard_normal((96, k)) / np.sqrt(k))}
    for method, g in maps.items():
        e = out["results"][method][str(k)]
        y, yt = g(z), g(zt)
        assert e["top1_image_to_text"] == pytest.approx(np.mean(ref.ranks(y[:320], y[320:], "euclidean") == 0))
        assert e["top1_text_to_image"] == pytest.approx(np.mean(ref.ranks(y[320:], y[:320], "euclidean") == 0))
        assert e["holdout"]["top1_image_to_text"] == pytest.approx(
            np.mean(ref.ranks(yt[:80], yt[80:], "euclidean") == 0))
        r5 = ref.recall(ref.ranks(y[:320], y[320:], "euclidean"), [5])[0]
        assert e["retrieval"]["image_to_text"]["R@5"] == pytest.approx(r5)
    # the full-D figure is the dense cosine ranking of the fitted pairs
    assert out["full"]["top1_image_to_text"] == pytest.approx(np.mean(ref.ranks(u[train], v[train]) == 0))
