"""`clipcore mds` (clipcore.cli.mds) in-process, against the float64 NumPy references of tests/reference/mds_numpy.py."""

import json

import numpy as np
import pytest

from clipcore.cli import main
from clipcore.models import NeuralMDS
from models.helpers import lifted_pairs
from reference import mds_numpy as ref


def test_cli_mds_writes_json_and_plot(tmp_path, capsys):
    # the isotonic fixture's data and options: its compiled epoch program is reused
    u, v = lifted_pairs(400, seed=1)
    np.save(tmp_path / "x.npy", u.astype(np.float32))
    np.save(tmp_path / "t.npy", v.astype(np.float32))
    out = tmp_path / "o" / "mds.json"
    rc = main(["mds", "--images", str(tmp_path / "x.npy"), "--texts", str(tmp_path / "t.npy"), "--dims", "6",
               "--method", "isotonic,pca,random,sklearn", "--epochs", "4", "--steps-per-epoch", "20", "--hidden", "64",
               "--batch-size", "256", "--learning-rate", "3e-4",
               "--sklearn-max", "50", "--sklearn-max-iter", "50", "--json", str(out), "--save-dir",
               str(tmp_path / "models")])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "top-1 i→t" in printed and "sklearn-nonmetric" in printed
    payload = json.loads(out.read_text())
    assert (tmp_path / "o" / "mds.png").stat().st_size > 1000
    # the full-dimension figure is the independent dense reference's
    full = np.mean(ref.ranks(u, v) == 0)
    assert payload["full"]["top1_image_to_text"] == pytest.approx(full)
    for m in ("isotonic", "pca", "random", "sklearn-metric", "sklearn-nonmetric"):
        e = payload["results"][m]["6"]
        assert 0 <= e["top1_image_to_text"] <= 1 and 0 < e["spearman"] <= 1
    assert payload["results"]["sklearn-metric"]["6"]["pairs"] == 50
    assert len(payload["results"]["isotonic"]["6"]["history"]) == 4
    back = NeuralMDS.load(payload["results"]["isotonic"]["6"]["model"])
    assert back.config.dim == 6
    # PCA's figure is the NumPy SVD's
    z = np.concatenate([u, v])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    p = ref.pca_coordinates(z, 6)
    assert payload["results"]["pca"]["6"]["top1_image_to_text"] == pytest.approx(
        np.mean(ref.ranks(p[:400], p[400:], "euclidean") == 0))


def test_cli_mds_holdout_scores_held_out_pairs(tmp_path, capsys):
    u, v = (a.astype(np.float32) for a in lifted_pairs(400, seed=1))
    np.save(tmp_path / "x.npy", u)
    np.save(tmp_path / "t.npy", v)
    u, v = u.astype(np.float64), v.astype(np.float64)
    out = tmp_path / "ho.json"
    rc = main(["mds", "--images", str(tmp_path / "x.npy"), "--texts", str(tmp_path / "t.npy"), "--dims", "6",
               "--method", "isotonic,pca,random,sklearn-metric", "--epochs", "1", "--steps-per-epoch", "20",
               "--hidden", "64", "--batch-size", "256", "--sklearn-max", "40", "--sklearn-max-iter", "30",
               "--holdout", "0.25", "--seed", "3", "--json", str(out), "--no-plot"])
    assert rc == 0
    assert "held-out top-1 i→t" in capsys.readouterr().out
    payload = json.loads(out.read_text())
    h = payload["holdout"]
    test = np.asarray(h["indices"])
    train = np.setdiff1d(np.arange(400), test)
    assert h["pairs"] == 100 == test.size and h["fit_pairs"] == 300 == payload["n"] and h["fraction"] == 0.25
    # the split is the seeded permutation; in-sample figures are on the fitted pairs, held-out on the rest
    np.testing.assert_array_equal(test, np.sort(np.random.default_rng(3).permutation(400)[:100]))
    assert payload["full"]["top1_image_to_text"] == pytest.approx(np.mean(ref.ranks(u[train], v[train]) == 0))
    assert h["full"]["top1_image_to_text"] == pytest.approx(np.mean(ref.ranks(u[test], v[test]) == 0))
    # PCA is fitted on the training pairs only and applied to the held-out ones (NumPy SVD reference)
    z = np.concatenate([u[train], v[train]])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    mu = z.mean(axis=0)
    _, _, vt = np.linalg.svd(z - mu, full_matrices=False)
    zt = np.concatenate([u[test], v[test]])
    zt = zt / np.linalg.norm(zt, axis=1, keepdims=True)
    pt = (zt - mu) @ vt[:6].T
    ptr = (z - mu) @ vt[:6].T
    e = payload["results"]["pca"]["6"]
    assert e["holdout"]["top1_image_to_text"] == pytest.approx(np.mean(ref.ranks(pt[:100], pt[100:], "euclidean") == 0))
    assert e["holdout"]["top1_text_to_image"] == pytest.approx(np.mean(ref.ranks(pt[100:], pt[:100], "euclidean") == 0))
    assert e["top1_image_to_text"] == pytest.approx(np.mean(ref.ranks(ptr[:300], ptr[300:], "euclidean") == 0))
    for m in ("isotonic", "random"):
        ho = payload["results"][m]["6"]["holdout"]
        assert 0 <= ho["top1_image_to_text"] <= 1 and 0 < ho["spearman"] <= 1
    assert payload["results"]["sklearn-metric"]["6"]["holdout"] is None  # no out-of-sample map
    assert payload["options"]["holdout"] == 0.25


def test_cli_mds_errors_are_one_line(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.standard_normal((20, 8)))
    np.save(tmp_path / "t.npy", rng.standard_normal((19, 8)))
    np.save(tmp_path / "t8.npy", rng.standard_normal((20, 8)))
    base = ["mds", "--images", str(tmp_path / "x.npy"), "--json", str(tmp_path / "o.json"), "--quiet"]
    cases = [(["--texts", str(tmp_path / "t.npy")], "texts: 19 rows but images has 20"),
             (["--texts", str(tmp_path / "t8.npy"), "--dims", "4,8"], "dims: D'=8 must be smaller"),
             (["--texts", str(tmp_path / "nope.npy")], "texts: file not found"),
             (["--texts", str(tmp_path / "t8.npy"), "--method", "tsne"], "method: unknown method 'tsne'")]
    for extra, msg in cases:
        assert main(base + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("clipcore: error: ") and msg in err[0], err


def test_default_dims_are_the_library_s():
    from clipcore.cli.mds import DEFAULT_DIMS
    from clipcore.models.mds_eval import DEFAULT_DIMS as LIBRARY

    assert DEFAULT_DIMS == ",".join(map(str, LIBRARY))
