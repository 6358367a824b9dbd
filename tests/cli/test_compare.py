"""``clipcore compare`` and ``clipcore clipscore`` end to end on generated sets with a known ranking."""

from __future__ import annotations

import json

import numpy as np
import pytest

import clipcore
from clipcore.cli import main
from clipcore.cli.compare import parse_set

P, K, D = 30, 6, 12


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Three models answering the same prompts: wide > mid > narrow spread; one as .npy pair files."""
    root = tmp_path_factory.mktemp("models")
    prompts = np.random.default_rng(0).standard_normal((P, D))
    paths = {}
    for i, (name, spread) in enumerate((("wide", 1.0), ("mid", 0.5), ("narrow", 0.2))):
        t = np.repeat(prompts, K, axis=0)
        x = t + spread * np.random.default_rng(i + 1).standard_normal(t.shape)
        if name == "mid":
            np.save(root / "mid_x.npy", x.astype(np.float32))
            np.save(root / "mid_t.npy", t.astype(np.float32))
            paths[name] = f"{root / 'mid_x.npy'},{root / 'mid_t.npy'}"
        else:
            clipcore.write_shards(root / name, x.astype(np.float32), t.astype(np.float32))
            paths[name] = str(root / name)
    return root, paths


def test_compare_command_ranks_and_writes_json_and_png(folders, capsys):
    root, paths = folders
    argv = ["compare"] + sum([["--set", f"{k}={v}"] for k, v in paths.items()], [])
    argv += ["--bootstrap", "40", "--json", str(root / "c.json"), "--plot", str(root / "c.png")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "ranking by SCE: wide > mid > narrow" in out and "one σ for every set" in out
    data = json.loads((root / "c.json").read_text())
    assert [r["name"] for r in data["ranking"]] == ["wide", "mid", "narrow"]
    assert data["settings"]["sigma"] > 0 and "environment" in data
    for name in paths:
        lo, hi = data["models"][name]["intervals"]["sce"]
        assert lo <= data["models"][name]["sce"] <= hi
    assert (root / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_command_equals_the_python_call(folders):
    root, paths = folders
    main(["compare", "--quiet", "--kernel", "cosine", "--bootstrap", "0", "--json", str(root / "d.json")]
         + sum([["--set", f"{k}={v}"] for k, v in paths.items()], []))
    data = json.loads((root / "d.json").read_text())
    r = clipcore.compare(dict(parse_set(f"{k}={v}") for k, v in paths.items()), kernel="cosine", bootstrap=0)
    for name in paths:
        assert data["models"][name]["sce"] == r[name].sce


def test_compare_command_reports_conditional_vendi_at_the_shared_sigma(folders, capsys):
    root, paths = folders
    argv = ["compare", "--bootstrap", "0", "--json", str(root / "cv.json")]
    assert main(argv + sum([["--set", f"{k}={v}"] for k, v in paths.items()], [])) == 0
    out = capsys.readouterr().out
    assert "conditional_vendi" in out and "information_vendi" in out and "σ for images and texts" in out
    data = json.loads((root / "cv.json").read_text())
    sigma = data["settings"]["sigma"]
    x, t = (np.load(root / f"mid_{k}.npy").astype(np.float64) for k in ("x", "t"))
    want = clipcore.conditional_vendi(x, t, sigma=sigma, dtype="float64")
    mid = data["models"]["mid"]
    assert mid["conditional_vendi"] == pytest.approx(want.conditional_vendi, rel=1e-10)
    assert mid["information_vendi"] == pytest.approx(want.information_vendi, rel=1e-10)
    assert mid["conditional_provenance"]["sigma_images"] == mid["conditional_provenance"]["sigma_texts"] == sigma
    cond = {k: data["models"][k]["conditional_vendi"] for k in paths}
    assert cond["wide"] > cond["mid"] > cond["narrow"]
    sets = sum([["--set", f"{k}={v}"] for k, v in paths.items()], [])
    assert main(argv + ["--no-conditional", "--quiet"] + sets) == 0
    assert json.loads((root / "cv.json").read_text())["models"]["mid"]["conditional_vendi"] is None


@pytest.mark.parametrize("bad", ["noequals", "=path", "a=x,y,z"])
def test_bad_set_is_one_error(bad, capsys):
    assert main(["compare", "--set", bad, "--set", "b=c"]) == 2
    assert "--set" in capsys.readouterr().err


def test_clipscore_both_variants_and_per_prompt(folders, capsys):
    root, paths = folders
    assert main(["clipscore", "--images", str(root / "wide"), "--json", str(root / "s.json")]) == 0
    out = capsys.readouterr().out
    assert "hessel" in out and "torchmetrics" in out and f"{P} prompts ({K}–{K} images each)" in out
    data = json.loads((root / "s.json").read_text())
    src = clipcore.sources.paired_source(str(root / "wide"))
    x, t = src.images.read(0, src.n), src.texts.read(0, src.n)
    for v in ("hessel", "torchmetrics"):
        assert data["scores"][v]["score"] == pytest.approx(clipcore.clip_score(x, t, variant=v).score, rel=1e-12)
    # per prompt: the mean of each prompt's per-pair values, against NumPy
    cos = np.sum(x * t, 1) / np.linalg.norm(x, axis=1) / np.linalg.norm(t, axis=1)
    per = 2.5 * np.maximum(cos, 0).reshape(P, K).mean(1)
    assert sorted(data["per_prompt"]["score"]) == pytest.approx(sorted(per), rel=1e-6)
    assert data["per_prompt"]["prompts"] == P


def test_score_prints_the_error_of_an_approximation(tmp_path, capsys):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((200, 6))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "t.npy", x + rng.standard_normal((200, 6)))
    assert main(["score", "--images", str(tmp_path / "x.npy"), "--texts", str(tmp_path / "t.npy"), "--kernel",
                 "gaussian", "--rff-features", "64", "--json", str(tmp_path / "s.json")]) == 0
    out = capsys.readouterr().out
    data = json.loads((tmp_path / "s.json").read_text())
    assert f"± {data['scores']['error']['sce']:.3g}" in out and "SCE (Scendi" in out
    assert main(["score", "--images", str(tmp_path / "x.npy"), "--texts", str(tmp_path / "t.npy"),
                 "--json", str(tmp_path / "c.json")]) == 0
    assert json.loads((tmp_path / "c.json").read_text())["scores"]["error"] is None
    assert "±" not in capsys.readouterr().out
