"""clipcore.retrieval against a dense float64 NumPy reference (tests/reference/mds_numpy.py)."""

import numpy as np
import pytest

import clipcore
from reference import mds_numpy as ref


def _pairs(n=57, d=12, seed=0, noise=1.0):
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((n, d))
    v = u + noise * rng.standard_normal((n, d))
    return u, v


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("block_size", [None, 1, 7, 57, 1000])
def test_matches_dense_reference(metric, block_size):
    u, v = _pairs()
    ks = (1, 5, 10)
    res = clipcore.retrieval(u, v, ks, metric=metric, block_size=block_size, progress=False)
    r_i2t, r_t2i = ref.ranks(u, v, metric), ref.ranks(v, u, metric)
    np.testing.assert_array_equal(res.image_to_text_rank, r_i2t)
    np.testing.assert_array_equal(res.text_to_image_rank, r_t2i)
    np.testing.assert_allclose(res.image_to_text, ref.recall(r_i2t, ks), rtol=0, atol=0)
    np.testing.assert_allclose(res.text_to_image, ref.recall(r_t2i, ks), rtol=0, atol=0)
    assert res.ks == ks and res.n == 57 and res.metric == metric
    # the reference is not trivial on this data: some misses, some hits
    assert 0 < res.image_to_text_top1 < 1 and res.image_to_text[-1] > res.image_to_text[0]


def test_top1_is_argmax_with_ties_to_the_lower_index():
    u, v = _pairs(n=40, d=6, seed=1)
    v[10] = v[3]  # duplicate captions: image 10's caption ties with caption 3
    v[20] = v[25]
    res = clipcore.retrieval(u, v, 1, progress=False)
    s = (u / np.linalg.norm(u, axis=1, keepdims=True)) @ (v / np.linalg.norm(v, axis=1, keepdims=True)).T
    np.testing.assert_array_equal(res.image_to_text_rank == 0, s.argmax(1) == np.arange(40))
    np.testing.assert_array_equal(res.text_to_image_rank == 0, s.argmax(0) == np.arange(40))
    np.testing.assert_array_equal(res.image_to_text_rank, ref.ranks(u, v))


def test_identical_pairs_are_all_found_and_float32_agrees():
    u, v = _pairs(n=300, d=16, seed=2, noise=0.3)
    assert clipcore.retrieval(u, u, (1,), progress=False).image_to_text_top1 == 1.0
    r64 = clipcore.retrieval(u, v, (1, 5), progress=False)
    r32 = clipcore.retrieval(u.astype(np.float32), v.astype(np.float32), (1, 5), progress=False)
    np.testing.assert_array_equal(r32.image_to_text, r64.image_to_text)
    summary = r64.summary()
    assert summary["image_to_text"]["R@1"] == r64.image_to_text_top1


def test_bad_inputs_get_clear_errors():
    u, v = _pairs(n=10, d=4)
    with pytest.raises(ValueError, match=r"texts: 9 rows but images has 10"):
        clipcore.retrieval(u, v[:9])
    with pytest.raises(ValueError, match=r"texts: dimension 3 differs"):
        clipcore.retrieval(u, v[:, :3])
    bad = v.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"texts: contains NaN at row 4"):
        clipcore.retrieval(u, bad)
    with pytest.raises(ValueError, match=r"images: empty set"):
        clipcore.retrieval(u[:0], v[:0])
    zero = u.copy()
    zero[2] = 0
    with pytest.raises(ValueError, match=r"images: row 2 has zero norm"):
        clipcore.retrieval(zero, v)
    clipcore.retrieval(zero, v, metric="euclidean", progress=False)  # fine without the normalisation
    with pytest.raises(ValueError, match=r"^k: "):
        clipcore.retrieval(u, v, (1, 0))
    with pytest.raises(ValueError, match=r"^k: "):
        clipcore.retrieval(u, v, ())
    with pytest.raises(ValueError, match=r"^metric: "):
        clipcore.retrieval(u, v, metric="dot")
    with pytest.raises(ValueError, match=r"^block_size: "):
        clipcore.retrieval(u, v, block_size=0)
