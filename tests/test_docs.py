"""The documentation: the site builds with warnings as errors, the API pages cover the public API, and every
Python example of the README and of the guides runs on generated data.

* ``mkdocs build --strict`` (mkdocs.yml; docstrings through mkdocstrings): a broken link or anchor, a
  docstring griffe cannot read or a missing README models-section marker fails the build.
* Every name in ``__all__`` of clipcore, clipcore.functional, clipcore.sources, clipcore.distributed and
  clipcore.models is in the built site's inventory (objects.inv).
* No tracker words ("issue 12") in the README, the docs sources or the built pages.
* Each ```python block of README.md and docs/**/*.md runs in a fresh namespace, in a fresh folder, after the
  setup block of docs/guides/data.md (marked ``<!-- docs-setup -->``), which defines the variables the
  examples use (``images``, ``texts``, ``images_a``, ``x``, ...). The folder holds an embedding set in each
  layout the large-sets examples read (clip-retrieval / LAION-400M, LAION-5B, DataComp, Parquet, autofaiss),
  written from the same stand-ins. A block preceded by ``<!-- skip-test: needs ... -->`` (a CLIP checkpoint,
  several processes) is skipped with that reason and counted. A block marked ``<!-- docs-test: slow -->``, or
  between ``<!-- docs-test: slow-start ... -->`` and ``<!-- docs-test: slow-end -->`` (the README's models
  section: its examples train models for minutes), runs under ``pytest -m slow``.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
import zlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import clipcore

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SETUP_PAGE = DOCS / "guides" / "data.md"
SKIP = re.compile(r"<!--\s*skip-test:\s*(?P<reason>[^>]*?)\s*-->")
SLOW = re.compile(r"<!--\s*docs-test:\s*slow\s*-->")
SLOW_START = re.compile(r"<!--\s*docs-test:\s*slow-start\b[^>]*-->")
SLOW_END = re.compile(r"<!--\s*docs-test:\s*slow-end\s*-->")
SETUP = re.compile(r"<!--\s*docs-setup\s*-->")
TRACKER = re.compile(r"\bissues?\s*#?\s*\d+", re.I)
DOCUMENTED = ("clipcore", "clipcore.functional", "clipcore.sources", "clipcore.distributed", "clipcore.models")


# -- the Python blocks ------------------------------------------------------------------------------------


class Block:
    """One ```python block: its file, first code line (1-based), code, and the marker before it."""

    def __init__(self, path: pathlib.Path, line: int, code: str, marker: str):
        self.path, self.line, self.code, self.marker = path, line, code, marker
        self.skip = (m["reason"] if (m := SKIP.search(marker)) else None)
        self.slow = bool(SLOW.search(marker))
        self.setup = bool(SETUP.search(marker))

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    def compiled(self):
        """The code compiled with the file's own line numbers (tracebacks point into the page)."""
        return compile("\n" * (self.line - 1) + self.code, str(self.path), "exec")


def python_blocks(path: pathlib.Path) -> list[Block]:
    """The ```python blocks of a Markdown file, each with the HTML comment on the line(s) just before it
    (``<!-- docs-test: slow -->`` also for every block between ``<!-- docs-test: slow-start -->`` and
    ``<!-- docs-test: slow-end -->``)."""
    lines = path.read_text().splitlines()
    blocks, i, slow_region = [], 0, False
    while i < len(lines):
        if SLOW_START.search(lines[i]):
            slow_region = True
        elif SLOW_END.search(lines[i]):
            slow_region = False
        if lines[i].strip() == "```python":
            j = i + 1
            while lines[j].strip() != "```":
                j += 1
            k = i - 1
            while k >= 0 and not lines[k].strip():
                k -= 1
            marker = lines[k] if k >= 0 and lines[k].lstrip().startswith("<!--") else ""
            if slow_region:
                marker += " <!-- docs-test: slow -->"
            blocks.append(Block(path, i + 2, "\n".join(lines[i + 1:j]) + "\n", marker))
            i = j
        i += 1
    return blocks


def doc_files() -> list[pathlib.Path]:
    return [ROOT / "README.md"] + sorted(DOCS.rglob("*.md"))


def setup_block() -> Block:
    found = [b for b in python_blocks(SETUP_PAGE) if b.setup]
    assert len(found) == 1, f"{SETUP_PAGE.relative_to(ROOT)}: expected one block marked <!-- docs-setup -->"
    return found[0]


BLOCKS = [b for f in doc_files() for b in python_blocks(f) if not b.setup]


def _param(b: Block):
    marks = [pytest.mark.slow] if b.slow else []
    return pytest.param(b, id=b.id, marks=marks)


# -- the folders the large-sets examples read -------------------------------------------------------------


def _list_column(x: np.ndarray) -> pa.Array:
    return pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(x).reshape(-1)), x.shape[1])


def _clip_retrieval(root: pathlib.Path, images, texts, captions, parts: int, width: int, meta=None) -> None:
    """img_emb/img_emb_{N}.npy, text_emb/text_emb_{N}.npy, metadata/metadata_{N}.parquet (float16)."""
    meta = meta or root / "metadata"
    for d in (root / "img_emb", root / "text_emb", meta):
        d.mkdir(parents=True)
    for k, idx in enumerate(np.array_split(np.arange(len(images)), parts)):
        num = str(k).zfill(width)
        np.save(root / "img_emb" / f"img_emb_{num}.npy", images[idx].astype(np.float16))
        np.save(root / "text_emb" / f"text_emb_{num}.npy", texts[idx].astype(np.float16))
        pq.write_table(pa.table({"image_path": [f"images/{i:06d}.jpg" for i in idx],
                                 "caption": [captions[i] for i in idx]}), meta / f"metadata_{num}.parquet")


def write_layouts(root: pathlib.Path, images: np.ndarray, texts: np.ndarray) -> None:
    """Every layout the large-sets examples name, from the stand-ins."""
    groups = np.unique(texts, axis=0, return_inverse=True)[1].reshape(-1)
    captions = [f"a photo of thing {g}" for g in groups]
    _clip_retrieval(root / "laion400m-embeddings", images, texts, captions, parts=11, width=0)   # 0 … 10
    _clip_retrieval(root / "laion5b" / "laion2B-en", images, texts, captions, parts=2, width=4,
                    meta=root / "laion5b" / "laion2B-en-metadata")
    shards = root / "datacomp" / "shards"
    shards.mkdir(parents=True)
    for k, idx in enumerate(np.array_split(np.arange(len(images)), 2)):
        np.savez(shards / f"{k:08d}.npz", l14_img=images[idx].astype(np.float16),
                 l14_txt=texts[idx].astype(np.float16))
        pq.write_table(pa.table({"uid": [f"{i:032x}" for i in idx], "text": [captions[i] for i in idx]}),
                       shards / f"{k:08d}.parquet")
    hf = root / "my-dataset" / "data"
    hf.mkdir(parents=True)
    pq.write_table(pa.table({"image_embedding": _list_column(images), "text_embedding": _list_column(texts),
                             "caption": captions}), hf / "train-00000-of-00001.parquet")
    (root / "autofaiss-out").mkdir()
    pq.write_table(pa.table({"embedding": _list_column(images)}), root / "autofaiss-out" / "part-0.parquet")


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> pathlib.Path:
    """A folder holding every layout, copied into each example's own folder."""
    ns: dict = {"__name__": "__docs_setup__"}
    exec(setup_block().compiled(), ns)
    root = tmp_path_factory.mktemp("docs-template")
    write_layouts(root, np.asarray(ns["images"]), np.asarray(ns["texts"]))
    return root


@pytest.mark.parametrize("block", [_param(b) for b in BLOCKS])
def test_example_runs(block: Block, template: pathlib.Path, tmp_path, monkeypatch):
    if block.skip is not None:
        pytest.skip(f"marked in the page: {block.skip}")
    work = tmp_path / "work"
    shutil.copytree(template, work)
    monkeypatch.chdir(work)
    ns: dict = {"__name__": "__docs__"}
    exec(setup_block().compiled(), ns)
    exec(block.compiled(), ns)


def test_readme_layout_calls_run(template, tmp_path, monkeypatch):
    """Each call the README's layouts section writes inline (`clipcore.sce("laion5b/laion2B-en/")`, ...) runs
    on the generated folder it names, in the order written (``path`` stands for a clip-retrieval folder)."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Embedding sets as other tools write them", 1)[1].split("\n#", 1)[0]
    calls = [c for c in re.findall(r"`([^`]+)`", section) if c.startswith("clipcore.") and c.endswith(")")]
    assert len(calls) >= 8, calls
    shutil.copytree(template, tmp_path / "work")
    monkeypatch.chdir(tmp_path / "work")
    ns: dict = {"__name__": "__docs__"}
    exec(setup_block().compiled(), ns)
    ns["path"] = "laion400m-embeddings/"
    for call in calls:
        result = eval(call, ns)
        if call.startswith(("clipcore.sce(", "clipcore.vendi(")):
            assert np.isfinite(float(getattr(result, "sce", getattr(result, "score", np.nan)))), call


def test_examples_are_counted_and_skips_say_why():
    """Every skipped example names what it needs; most examples run."""
    skipped = [b for b in BLOCKS if b.skip is not None]
    for b in skipped:
        assert b.skip.startswith("needs "), f"{b.id}: a skip-test marker says what the example needs"
    slow = [b for b in BLOCKS if b.slow and b.skip is None]
    runnable = len(BLOCKS) - len(skipped) - len(slow)
    print(f"\n{len(BLOCKS)} Python examples: {runnable} run, {len(slow)} under -m slow, {len(skipped)} skipped "
          f"({', '.join(f'{b.id} ({b.skip})' for b in skipped)})")
    assert runnable >= 25 and len(skipped) <= 5
    assert {b.path for b in BLOCKS} >= {ROOT / "README.md", DOCS / "guides" / "evaluate.md",
                                        DOCS / "guides" / "compare.md", DOCS / "guides" / "large-sets.md",
                                        DOCS / "guides" / "jax.md", DOCS / "guides" / "sigma.md"}


def test_readme_first_example_is_the_comparison():
    first = python_blocks(ROOT / "README.md")[0]
    assert "clipcore.compare(" in first.code and "r.table()" in first.code
    readme = (ROOT / "README.md").read_text()
    assert "SCE (Scendi)" in readme.split("```", 1)[0], "SCE is named SCE (Scendi) where it is introduced"
    assert "≈ (not separable)" in readme


# -- the site ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> pathlib.Path:
    """``mkdocs build --strict`` into a temporary folder (warnings are errors)."""
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(ROOT / "mkdocs.yml"),
                          "-d", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stdout}\n{run.stderr}"
    print(f"\nmkdocs build --strict: {time.perf_counter() - start:.1f} s")
    return out


def test_strict_build(site):
    for page in ("index.html", "spec/index.html", "spec_models/index.html", "guides/models/index.html",
                 "api/clipcore/index.html", "api/functional/index.html", "api/sources/index.html",
                 "api/distributed/index.html", "api/models/index.html"):
        assert (site / page).is_file(), page
    models = (site / "guides" / "models" / "index.html").read_text()
    assert "include: README models section" not in models, "the README's models section is included"


def _inventory(site: pathlib.Path) -> set[str]:
    """The object names of the site's Sphinx-format inventory (objects.inv, as mkdocstrings writes it)."""
    raw = (site / "objects.inv").read_bytes()
    body = raw.split(b"\n", 4)[4]  # four header lines, then zlib
    return {line.split(" ", 1)[0] for line in zlib.decompress(body).decode().splitlines() if line}


def test_api_pages_cover_the_public_api(site):
    import importlib

    names = _inventory(site)
    missing = []
    for mod in DOCUMENTED:
        module = importlib.import_module(mod)
        for name in module.__all__:
            if name != "__version__" and f"{mod}.{name}" not in names:
                missing.append(f"{mod}.{name}")
    assert not missing, "public names missing from the API pages: " + ", ".join(missing)


def test_spec_pages_are_the_specs():
    """docs/spec*.md are the project's specifications, verbatim under a note saying so (checked against the
    originals where this checkout sits beside them)."""
    for page, src in (("spec.md", "SPEC.md"), ("spec_models.md", "SPEC_MODELS.md")):
        text = (DOCS / page).read_text()
        assert f"This page is the project's `{src}`" in text
        original = ROOT.parent / "shared" / src
        if original.is_file():
            assert original.read_text() in text, f"docs/{page} differs from {src}"


def test_no_tracker_words(site):
    bad = []
    for f in doc_files():
        bad += [f"{f.relative_to(ROOT)}: {m[0]}" for m in TRACKER.finditer(f.read_text())]
    for f in site.rglob("*.html"):
        text = re.sub(r"<[^>]+>", " ", f.read_text())
        bad += [f"site/{f.relative_to(site)}: {m[0]}" for m in TRACKER.finditer(text)]
    assert not bad, "tracker words in the documentation:\n" + "\n".join(bad)
