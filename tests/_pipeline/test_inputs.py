"""clipcore._pipeline.inputs: what kind of input a call was given (arrays, large host arrays, files, shard
directories, iterators), the σ sample (the rows the median heuristic would pick), and the resolved kernel."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import clipcore
from clipcore._pipeline import inputs as PI
from clipcore.kernels import FeatureMap, draw_omega, median_sigma


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.default_rng(0)
    t = rng.standard_normal((300, 6))
    return t + 0.5 * rng.standard_normal((300, 6)), t


def test_arrays_are_in_memory(pairs):
    x, t = pairs
    inp = PI.paired_inputs(x, t, nonzero=True, same_dim=False)
    assert inp.src is None and not inp.streamed and inp.in_memory and not inp.iterator and not inp.distributed
    assert isinstance(inp.images, jax.Array) and isinstance(inp.texts, jax.Array)
    assert (inp.n, inp.d_images, inp.d_texts) == (300, 6, 6)
    np.testing.assert_array_equal(np.asarray(inp.sample), x)  # the σ heuristic's rows: the images
    one = PI.single_inputs(x.tolist(), nonzero=False)
    assert one.src is None and one.texts is None and one.d_texts is None and one.n == 300
    with pytest.raises(ValueError, match="^texts: missing; pass the prompts' embeddings"):
        PI.paired_inputs(x, None, nonzero=False, same_dim=False)
    with pytest.raises(ValueError, match="^texts: dimension 3 differs from images' 6"):
        PI.paired_inputs(x, t[:, :3], nonzero=False, same_dim=True)
    with pytest.raises(ValueError, match="^images: row 0 has zero norm"):
        PI.paired_inputs(np.zeros_like(x), t, nonzero=True, same_dim=False)


def test_large_host_arrays_stream_but_stay_in_memory(pairs, monkeypatch):
    x, t = pairs
    monkeypatch.setattr(PI, "IN_MEMORY_ROWS", 100)
    inp = PI.paired_inputs(x, t, nonzero=False, same_dim=True)
    assert inp.streamed and inp.in_memory and inp.images is None and inp.n == 300 and callable(inp.sample)
    one = PI.single_inputs(x, nonzero=False)
    assert one.streamed and one.in_memory and one.n == 300
    # at the threshold they are plain in-memory arrays
    monkeypatch.setattr(PI, "IN_MEMORY_ROWS", 300)
    assert not PI.paired_inputs(x, t, nonzero=False, same_dim=True).streamed


def test_files_small_are_read_whole_large_stream(pairs, tmp_path, monkeypatch):
    x, t = pairs
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", t)
    small = PI.paired_inputs(str(tmp_path / "x.npy"), str(tmp_path / "t.npy"), nonzero=False, same_dim=True)
    assert small.src is None and small.n == 300
    np.testing.assert_array_equal(np.asarray(small.images), x)
    monkeypatch.setattr(PI, "IN_MEMORY_ROWS", 100)
    big = PI.paired_inputs(str(tmp_path / "x.npy"), str(tmp_path / "t.npy"), nonzero=False, same_dim=True)
    assert big.streamed and not big.in_memory and big.n == 300 and (big.d_images, big.d_texts) == (6, 6)
    # a bad row of a small file is named by global row and by file
    bad = x.copy()
    bad[7, 1] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    monkeypatch.setattr(PI, "IN_MEMORY_ROWS", 1 << 16)
    with pytest.raises(ValueError, match=r"^x: contains NaN at row 7 \(.*bad\.npy.*\)"):
        PI.single_inputs(str(tmp_path / "bad.npy"), nonzero=False)


def test_shard_directories_and_iterators(pairs, tmp_path):
    x, t = pairs
    clipcore.write_shards(tmp_path / "emb", x, t, shard_rows=128)
    d = PI.paired_inputs(str(tmp_path / "emb"), None, nonzero=False, same_dim=True)  # texts from the shards
    assert d.n == 300 and d.d_texts == 6
    it = PI.paired_inputs(((x[i:i + 64], t[i:i + 64]) for i in range(0, 300, 64)), None, nonzero=False,
                          same_dim=True)
    assert it.streamed and it.iterator and not it.in_memory and it.n is None and (it.d_images, it.d_texts) == (6, 6)
    np.testing.assert_array_equal(it.sample(), x[:64])  # an iterator's σ sample: its first block
    one = PI.single_inputs(iter([x[:100], x[100:]]), nonzero=False)
    assert one.iterator and one.d_images == 6 and one.d_texts is None


def test_sigma_sample_is_what_median_sigma_would_pick(monkeypatch):
    """Streamed rows: σ from the sample equals median_sigma on all the rows (the same seeded 2000 rows)."""
    x = np.random.default_rng(1).standard_normal((2500, 4))
    monkeypatch.setattr(PI, "IN_MEMORY_ROWS", 100)
    inp = PI.single_inputs(x, nonzero=False)
    sample = inp.sample()
    assert sample.shape == (PI.SIGMA_SAMPLE, 4)
    assert median_sigma(sample) == median_sigma(x)
    small = PI.single_inputs(x[:500], nonzero=False)  # streamed, fewer rows than the sample: all of them
    np.testing.assert_array_equal(small.sample(), x[:500])
    monkeypatch.setattr(PI, "IN_MEMORY_ROWS", 1 << 16)
    mem = PI.single_inputs(x, nonzero=False)  # in memory: the rows themselves (median_sigma subsamples them)
    assert median_sigma(np.asarray(mem.sample)) == median_sigma(x)


def test_resolve_kernel(pairs):
    x, _ = pairs
    cos = PI.resolve_kernel(PI.resolve_kernel_options(kernel="cosine"), normalize=False, convention="paper",
                            sample=x, dim=6)
    assert cos.fmap == FeatureMap("cosine") and cos.kind == "cosine" and cos.sigma is None and cos.omega is None
    cd = PI.resolve_kernel(PI.resolve_kernel_options(kernel="cosine"), normalize=False,
                           convention="clip-dissection", sample=x, dim=6)
    assert cd.fmap == FeatureMap("identity")
    for kw in (dict(sigma=1.0), dict(rff_features=4), dict(omega=np.ones((6, 4)))):
        (name,) = kw
        with pytest.raises(ValueError, match=f"^{name}: only used by kernel='gaussian'"):
            PI.resolve_kernel(PI.resolve_kernel_options(kernel="cosine", **kw), normalize=False, convention="paper",
                              sample=x, dim=6)
    # the exact kernel: σ by the median heuristic on the sample (read only when σ is needed)
    ex = PI.resolve_kernel(PI.resolve_kernel_options(kernel="gaussian"), normalize=False, convention="paper",
                           sample=lambda: x, dim=6)
    assert ex.exact and ex.kind == "exact" and ex.sigma == median_sigma(x) and ex.rff_frequencies is None

    def never():
        raise AssertionError("the sample was read although σ was given")

    given = PI.resolve_kernel(PI.resolve_kernel_options(kernel="gaussian", sigma=2.0), normalize=True,
                              convention="paper", sample=never, dim=6)
    assert given.sigma == 2.0 and given.normalize
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    norm = PI.resolve_kernel(PI.resolve_kernel_options(kernel="gaussian"), normalize=True, convention="paper",
                             sample=x, dim=6)
    assert norm.sigma == median_sigma(xn)  # the heuristic on the normalised rows
    # RFF: ω drawn from the key, or given (then no seed)
    rff = PI.resolve_kernel(PI.resolve_kernel_options(kernel="gaussian", sigma=2.0, rff_features=8, key=5),
                            normalize=False, convention="paper", sample=never, dim=6)
    assert rff.kind == "rff" and rff.seed == 5 and rff.rff_frequencies == 8
    np.testing.assert_array_equal(np.asarray(rff.omega), np.asarray(draw_omega(jax.random.key(5), 6, 8, 2.0)))
    om = np.ones((6, 3))
    g = PI.resolve_kernel(PI.resolve_kernel_options(kernel="gaussian", omega=om), normalize=False,
                          convention="paper", sample=never, dim=6)
    assert g.seed is None and g.rff_frequencies == 3 and g.sigma is None
    for kw, msg in ((dict(omega=om, key=1), "key: pass either omega= or key=, not both"),
                    (dict(omega=om, rff_features=4), "omega: has 3 frequencies but rff_features = 4"),
                    (dict(omega=np.ones((5, 3))), r"omega: shape \(5, 3\) but the embeddings have d = 6")):
        with pytest.raises(ValueError, match=msg):
            PI.resolve_kernel(PI.resolve_kernel_options(kernel="gaussian", **kw), normalize=False,
                              convention="paper", sample=never, dim=6)


def test_kernel_options_are_validated_whatever_the_kernel():
    for kw, name in ((dict(kernel="laplace"), "kernel"), (dict(kernel="cosine", sigma=-1), "sigma"),
                     (dict(kernel="cosine", rff_features=0), "rff_features"),
                     (dict(kernel="cosine", omega=np.ones(3)), "omega"), (dict(kernel="cosine", key=-1), "key")):
        with pytest.raises(ValueError, match=f"^{name}: "):
            PI.resolve_kernel_options(**kw)
    opts = PI.resolve_kernel_options(kernel="gaussian", key=jax.random.key(2))
    assert opts.seed.seed is None and opts.seed.numpy == PI.resolve_kernel_options(
        kernel="gaussian", key=jax.random.key_data(jax.random.key(2))).seed.numpy


def test_reduce_sums_passes_a_local_source_through():
    sums = (np.ones(2), np.zeros(1))
    assert PI.reduce_sums(object(), sums, 7) == (sums, 7)
