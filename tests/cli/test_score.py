"""`clipcore score`, `edit` and `demo` (clipcore.cli.score), in-process, against the reference fixtures."""

import json

import numpy as np
import pytest

from clipcore.cli import main


def _ref(ref_dir):
    scores = json.loads((ref_dir / "reference_scores.json").read_text())["scores"]
    return scores


def test_score_cosine_clip_dissection_matches_reference(ref_dir, tmp_path, capsys):
    out = tmp_path / "s.json"
    rc = main(["score", "--images", str(ref_dir / "image_feats.npy"), "--texts", str(ref_dir / "text_feats.npy"),
               "--convention", "clip-dissection", "--json", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "SCE" in printed and "text score" in printed
    payload = json.loads(out.read_text())
    ref = _ref(ref_dir)["cosine"]
    assert payload["scores"]["sce"] == pytest.approx(ref["SCE"], rel=1e-5)
    assert payload["scores"]["text_score"] == pytest.approx(ref["text_component"], rel=1e-5)
    # provenance
    r = payload["result"]
    assert r["kernel"] == "cosine" and r["convention"] == "clip-dissection" and r["n"] == 500
    assert payload["inputs"]["images"]["shape"] == [500, 64]
    assert len(payload["inputs"]["images"]["sha256"]) == 64
    assert "jax" in payload["environment"]


def test_score_gaussian_rff_with_saved_omega(ref_dir, tmp_path):
    out = tmp_path / "g.json"
    rc = main(["score", "--images", str(ref_dir / "image_feats.npy"), "--texts", str(ref_dir / "text_feats.npy"),
               "--kernel", "gaussian", "--sigma", "0.5", "--omega", str(ref_dir / "omegas/gauss_s0.5_D200_omegas.npy"),
               "--json", str(out), "--quiet"])
    assert rc == 0
    payload = json.loads(out.read_text())
    ref = _ref(ref_dir)["gauss_s0.5_D200"]
    assert payload["scores"]["sce"] == pytest.approx(ref["SCE"], rel=1e-3)
    assert payload["scores"]["text_score"] == pytest.approx(ref["text_component"], rel=1e-3)
    assert payload["result"]["rff_features"] == 200
    assert payload["result"]["num_features"] == 400
    assert "omega" in payload["inputs"]


def test_score_npz_and_seed(tmp_path):
    rng = np.random.default_rng(0)
    t = rng.standard_normal((300, 8)).astype(np.float32)
    x = (t + rng.standard_normal((300, 8))).astype(np.float32)
    np.savez(tmp_path / "pairs.npz", images=x, texts=t)
    out = tmp_path / "o.json"
    args = ["score", "--images", str(tmp_path / "pairs.npz"), "--images-key", "images",
            "--texts", str(tmp_path / "pairs.npz"), "--texts-key", "texts", "--kernel", "gaussian",
            "--rff-features", "50", "--seed", "3", "--json", str(out), "--quiet"]
    assert main(args) == 0
    first = json.loads(out.read_text())
    assert first["result"]["seed"] == 3
    assert main(args) == 0
    assert json.loads(out.read_text())["scores"] == first["scores"]  # seeded: reproducible


@pytest.mark.parametrize(
    "setup, message",
    [
        ("missing", "file not found"),
        ("one_d", "expected [n, d]"),
        ("ints", "expected float32 or float64"),
        ("mismatch", "rows but images has"),
        ("nan", "NaN at row 7"),
    ],
)
def test_score_bad_inputs_exit_2(tmp_path, capsys, setup, message):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 4)).astype(np.float32)
    t = rng.standard_normal((20, 4)).astype(np.float32)
    if setup == "one_d":
        x = x[:, 0]
    elif setup == "ints":
        x = np.ones((20, 4), np.int32)
    elif setup == "mismatch":
        t = t[:10]
    elif setup == "nan":
        x[7, 1] = np.nan
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", t)
    images = tmp_path / ("nope.npy" if setup == "missing" else "x.npy")
    rc = main(["score", "--images", str(images), "--texts", str(tmp_path / "t.npy")])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("clipcore: error:") and message in err


def test_edit_reproduces_reference_correction(ref_dir, tmp_path):
    out = tmp_path / "edited.npy"
    rc = main(["edit", "--images", str(ref_dir / "image_feats.npy"), "--texts", str(ref_dir / "text_feats.npy"),
               "--query-images", str(ref_dir / "image_to_correct.npy"),
               "--query-texts", str(ref_dir / "text_to_correct.npy"),
               "--convention", "clip-dissection", "--out", str(out), "--json", str(tmp_path / "e.json"), "--quiet"])
    assert rc == 0
    expected = np.load(ref_dir / "correction" / "t2i_cosine_corrected.npy")
    np.testing.assert_allclose(np.load(out), expected, atol=1e-4)
    meta = json.loads((tmp_path / "e.json").read_text())
    assert meta["mode"] == "nullify" and meta["output_shape"] == [8, 64]


def test_edit_t2t_needs_other_texts(ref_dir, tmp_path, capsys):
    rc = main(["edit", "--images", str(ref_dir / "image_feats.npy"), "--texts", str(ref_dir / "text_feats.npy"),
               "--mode", "t2t", "--out", str(tmp_path / "o.npy")])
    assert rc == 2
    assert "other_texts" in capsys.readouterr().err


def test_demo_writes_json(tmp_path, capsys):
    out = tmp_path / "demo.json"
    assert main(["demo", "--n", "400", "--d", "16", "--rff-features", "50", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "diverse" in printed and "collapsed" in printed
    payload = json.loads(out.read_text())
    res = payload["results"]
    # the generator with 8 prompt-independent modes is the more diverse one under SCE
    assert res["diverse (8 image modes) / cosine"]["scores"]["sce"] > res["collapsed (1 image mode) / cosine"]["scores"]["sce"]


def test_help_everywhere(capsys):
    for cmd in ([], ["score"], ["edit"], ["demo"]):
        with pytest.raises(SystemExit) as e:
            main(cmd + ["--help"])
        assert e.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_score_streams_a_shard_directory(tmp_path, monkeypatch):
    import clipcore
    from clipcore._pipeline import inputs as inputs_mod

    monkeypatch.setattr(inputs_mod, "IN_MEMORY_ROWS", 0)  # stream the small shard directory
    d = clipcore.synthetic_pairs(n=900, d=16, seed=2)
    clipcore.write_shards(tmp_path / "s", d.images, d.texts, shard_rows=250)
    out = tmp_path / "o.json"
    # streamed vs in memory compared in float64 (float32 rows default to float32 products)
    assert main(["score", "--images", str(tmp_path / "s"), "--json", str(out), "--quiet",
                 "--dtype", "float64"]) == 0
    payload = json.loads(out.read_text())
    want = clipcore.sce(d.images, d.texts, dtype="float64")
    assert payload["scores"]["sce"] == pytest.approx(want.sce, rel=1e-10)
    # Vendi orders come from the SCE's own C_XX spectrum: equal to clipcore.vendi
    assert payload["scores"]["vendi"]["2.0"] == pytest.approx(
        clipcore.rke(d.images, dtype="float64").score, rel=1e-10)
    assert payload["scores"]["vendi"]["inf"] == pytest.approx(
        clipcore.vendi(d.images, order=float("inf"), dtype="float64").score, rel=1e-10)
    assert payload["inputs"]["images"]["rows"] == 900 and payload["inputs"]["images"]["files"] == 4
    assert len(payload["inputs"]["images"]["sha256"]) == 64  # the manifest's hash


def test_score_vendi_orders_are_float64(tmp_path):
    """Vendi orders printed by `clipcore score` come from float64 eigenvalues and stay float64."""
    import json

    import numpy as np

    import clipcore
    from clipcore import cli

    d = clipcore.synthetic_pairs(400, 12, seed=5)
    np.save(tmp_path / "x.npy", d.images)
    np.save(tmp_path / "t.npy", d.texts)
    out = tmp_path / "s.json"
    assert cli.main(["score", "--images", str(tmp_path / "x.npy"), "--texts", str(tmp_path / "t.npy"),
                     "--json", str(out), "--quiet", "--dtype", "float64"]) == 0
    got = json.loads(out.read_text())["scores"]["vendi"]
    for order in (1.0, 2.0):
        want = clipcore.vendi(d.images, order=order, dtype="float64").score
        assert abs(got[str(order)] - want) <= 1e-12 * want
    # the default follows the float32 rows: within float32's reach of the float64 scores
    out32 = tmp_path / "s32.json"
    assert cli.main(["score", "--images", str(tmp_path / "x.npy"), "--texts", str(tmp_path / "t.npy"),
                     "--json", str(out32), "--quiet"]) == 0
    got32 = json.loads(out32.read_text())["scores"]["vendi"]
    for order in (1.0, 2.0):
        assert abs(got32[str(order)] - got[str(order)]) <= 1e-6 * got[str(order)]


def test_demo_compares_both_generators_at_one_sigma(tmp_path):
    from clipcore.datasets import synthetic_pairs
    from clipcore.kernels import median_sigma

    out = tmp_path / "demo.json"
    assert main(["demo", "--quiet", "--n", "300", "--d", "8", "--rff-features", "20", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    pooled = np.concatenate([synthetic_pairs(n=300, d=8, num_prompts=10, seed=0, num_modes=k,
                                             mode_strength=0.6).images for k in (8, 1)])
    assert data["sigma"] == pytest.approx(median_sigma(pooled), rel=1e-12)
    sigmas = {k: v["result"]["sigma"] for k, v in data["results"].items() if "gaussian" in k}
    assert len(sigmas) == 2 and all(s == data["sigma"] for s in sigmas.values())


@pytest.mark.parametrize("kernel_args, kw", [
    ([], dict(kernel="cosine")),
    (["--kernel", "gaussian"], dict(kernel="gaussian")),
    (["--kernel", "gaussian", "--sigma", "2.5"], dict(kernel="gaussian", sigma=2.5)),
], ids=["cosine", "gaussian-heuristic", "gaussian-sigma"])
def test_score_reports_conditional_and_information_vendi(tmp_path, capsys, kernel_args, kw):
    """`clipcore score` prints and writes Conditional / Information Vendi equal to clipcore.conditional_vendi
    on the same rows and kernel (float64 both sides)."""
    import clipcore

    d = clipcore.synthetic_pairs(240, 6, num_prompts=8, seed=7)
    np.save(tmp_path / "x.npy", d.images)
    np.save(tmp_path / "t.npy", d.texts)
    out = tmp_path / "c.json"
    assert main(["score", "--images", str(tmp_path / "x.npy"), "--texts", str(tmp_path / "t.npy"), *kernel_args,
                 "--dtype", "float64", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "SCE (Scendi" in printed
    assert "Conditional Vendi (images given prompts)" in printed
    assert "Information Vendi (prompt dependence)" in printed
    assert "conditional vendi: kernel=" in printed
    payload = json.loads(out.read_text())
    want = clipcore.conditional_vendi(d.images, d.texts, dtype="float64", **kw)
    s = payload["scores"]
    for key in ("conditional_vendi", "information_vendi", "conditional_entropy", "mutual_information"):
        assert s[key] == pytest.approx(getattr(want, key), rel=1e-10, abs=1e-10), key
    c = payload["conditional"]
    assert c["method"] == want.method and c["order"] == 1.0 and c["dtype"] == "float64"
    assert (c["sigma_images"], c["sigma_texts"]) == (want.sigma_images, want.sigma_texts)
    if "sigma" in kw:
        assert c["sigma_images"] == c["sigma_texts"] == 2.5
    assert s["error"] is None  # exact: no ±


def test_score_conditional_nystrom_has_an_error_bar(tmp_path, capsys):
    import clipcore

    d = clipcore.synthetic_pairs(400, 6, num_prompts=8, seed=8)
    np.save(tmp_path / "x.npy", d.images)
    np.save(tmp_path / "t.npy", d.texts)
    out = tmp_path / "n.json"
    assert main(["score", "--images", str(tmp_path / "x.npy"), "--texts", str(tmp_path / "t.npy"), "--kernel",
                 "gaussian", "--sigma", "3", "--landmarks", "40", "--seed", "2", "--dtype", "float64",
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    payload = json.loads(out.read_text())
    want = clipcore.conditional_vendi(d.images, d.texts, sigma=3.0, landmarks=40, key=2, dtype="float64")
    assert payload["conditional"]["method"] == want.method == "nystrom"
    s = payload["scores"]
    assert s["conditional_vendi"] == pytest.approx(want.conditional_vendi, rel=1e-10)
    assert s["information_vendi"] == pytest.approx(want.information_vendi, rel=1e-10)
    # the ± is the spread of the named Nyström estimates around the chosen one
    spread = max(abs(e["conditional_vendi"] - want.conditional_vendi) for e in want.estimates.values())
    assert s["error"]["conditional_vendi"] == pytest.approx(spread, rel=1e-10) == want.error["conditional_vendi"]
    assert "sce" in s["error"]  # SCE's own ± next to it
    line = next(ln for ln in printed.splitlines() if ln.startswith("Conditional Vendi"))
    assert "±" in line


def test_score_no_conditional(tmp_path, capsys):
    import clipcore

    d = clipcore.synthetic_pairs(100, 4, seed=9)
    np.save(tmp_path / "x.npy", d.images)
    np.save(tmp_path / "t.npy", d.texts)
    out = tmp_path / "q.json"
    assert main(["score", "--images", str(tmp_path / "x.npy"), "--texts", str(tmp_path / "t.npy"),
                 "--no-conditional", "--json", str(out)]) == 0
    assert "Conditional Vendi (" not in capsys.readouterr().out
    payload = json.loads(out.read_text())
    assert payload["scores"]["conditional_vendi"] is None and payload["conditional"]["computed"] is False
