"""Image folders and prompt files → CLIP embeddings on disk (sharded, resumable).

``embed`` turns what users start from — a folder (or glob) of images and a
prompt file — into the clipcore shard format that :func:`clipcore.sce`,
:func:`clipcore.vendi` and ``clipcore score --images OUT`` stream
(``manifest.json`` with ``"format": "clipcore-shards/1"``, see
:mod:`clipcore.sources`).  The manifest extends that format compatibly with
what the rows are: the image file and prompt of every row, the model, the
dtype, the normalisation, and the inputs that were skipped (unreadable
images are reported and recorded, never silently dropped from the pairing).

Pairing of images and prompts:

* a ``.jsonl`` prompt file whose lines name their image
  (``{"image": "cat/01.png", "prompt": "a cat"}``; ``file`` / ``file_name``
  and ``text`` / ``caption`` are accepted too) pairs explicitly; image paths
  are relative to the images folder;
* otherwise (``.txt``: one prompt a line, empty lines ignored; or ``.jsonl``
  lines without an image) prompt i goes with image i of the sorted file
  list, or a single prompt goes with every image;
* images alone or prompts alone are embedded unpaired (one column).

Work is split into shards of ``shard_rows`` inputs.  A shard is written
(``.npy`` files, then its ``shard-k.json`` record, each atomically) before
the next starts; a second run with the same inputs, model and options
skips the shards already on disk, so an interrupted run resumes.  The
manifest is written last.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np

from ._progress import bar, check_progress
from ._validate import check_positive_int
from .sources import FORMAT, MANIFEST

__all__ = ["embed", "EmbedResult", "load_clip", "read_embed_manifest", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
_SHARD_DIR = "shards"
_STATE = "run.json"


def load_clip(path: str | os.PathLike, **kwargs):
    """Load a local Hugging Face CLIP checkpoint (see :func:`clipcore.encoder.load_clip`).

    Imported on first use, so ``import clipcore`` never pays for Flax or
    transformers.  Returns a :class:`clipcore.encoder.CLIPEncoder` with
    ``encode_images`` / ``encode_texts`` giving ``[n, projection_dim]``
    float32 features (transformers' ``get_image_features`` /
    ``get_text_features``, not normalised).
    """
    from .encoder import load_clip as _load

    return _load(path, **kwargs)


class EmbedResult(NamedTuple):
    """What :func:`embed` wrote.

    Attributes:
      directory: the output directory (``clipcore.sce(directory)`` reads it).
      manifest: path of ``manifest.json``.
      n: rows written (inputs minus skipped ones).
      skipped: ``[{"item", "image", "prompt", "error"}]`` inputs left out.
      shards_written, shards_resumed: shards computed now / found on disk.
    """

    directory: str
    manifest: str
    n: int
    skipped: list
    shards_written: int
    shards_resumed: int


@dataclasses.dataclass(frozen=True)
class _Item:
    image: str | None  # absolute path
    prompt: str | None


# ------------------------------------------------------------------ inputs
def _list_images(images: Any) -> tuple[list[str], str | None]:
    """Sorted absolute image paths and the root they are named relative to."""
    if images is None:
        return [], None
    if isinstance(images, (list, tuple)):
        files = [os.path.abspath(os.fspath(p)) for p in images]
    else:
        path = os.fspath(images)
        if os.path.isdir(path):
            files = []
            for dirpath, dirnames, names in os.walk(path):
                dirnames.sort()
                files += [os.path.join(dirpath, f) for f in names if f.lower().endswith(IMAGE_EXTENSIONS)]
            files = sorted(os.path.abspath(f) for f in files)
            if not files:
                raise ValueError(f"images: folder {path} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
            return files, os.path.abspath(path)
        if any(ch in path for ch in "*?["):
            files = sorted(os.path.abspath(f) for f in glob.glob(path, recursive=True) if os.path.isfile(f))
            if not files:
                raise FileNotFoundError(f"images: no file matches {path}")
        elif os.path.isfile(path):
            files = [os.path.abspath(path)]
        else:
            raise FileNotFoundError(f"images: no folder, file or glob match: {path}")
    if not files:
        raise ValueError("images: empty list of image files")
    root = os.path.commonpath([os.path.dirname(f) for f in files])
    return files, root


def _read_prompts(path: Any) -> list[tuple[str | None, str]]:
    """``[(image or None, prompt)]`` from a .txt or .jsonl prompt file (or a list of strings)."""
    if path is None:
        return []
    if isinstance(path, (list, tuple)):
        return [(None, _check_prompt(p, f"prompts[{i}]")) for i, p in enumerate(path)]
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"prompts: file not found: {path}")
    ext = os.path.splitext(path)[1].lower()
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    if ext == ".txt":
        out = [(None, line.strip()) for line in lines if line.strip()]
    elif ext == ".jsonl":
        out = []
        for k, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"prompts: {path} line {k} is not JSON ({exc.msg})") from None
            if isinstance(obj, str):
                obj = {"prompt": obj}
            if not isinstance(obj, dict):
                raise ValueError(f"prompts: {path} line {k}: expected an object or a string")
            text = next((obj[key] for key in ("prompt", "text", "caption") if key in obj), None)
            image = next((obj[key] for key in ("image", "file", "file_name") if key in obj), None)
            out.append((None if image is None else str(image), _check_prompt(text, f"prompts: {path} line {k}")))
        if any(i is not None for i, _ in out) and any(i is None for i, _ in out):
            raise ValueError(f"prompts: {path} names an image on some lines but not on others")
    else:
        raise ValueError(f"prompts: {path}: expected a .txt (one prompt a line) or .jsonl file, got {ext or 'no extension'}")
    if not out:
        raise ValueError(f"prompts: {path} holds no prompts")
    return out


def _check_prompt(text: Any, where: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{where}: expected a non-empty prompt string (key 'prompt', 'text' or 'caption'), got {text!r}")
    return text.strip()


def _pair(images: Any, prompts: Any) -> tuple[list[_Item], str | None]:
    files, root = _list_images(images)
    plist = _read_prompts(prompts)
    if not files and not plist:
        raise ValueError("images: nothing to embed; pass images (a folder, glob or list) and/or prompts")
    if plist and plist[0][0] is not None:  # explicit pairs
        if images is None:
            raise ValueError("images: the prompt file names images; pass the folder they are relative to")
        return [_Item(os.path.abspath(os.path.join(root, img)), p) for img, p in plist], root
    if not files:
        return [_Item(None, p) for _, p in plist], None
    if not plist:
        return [_Item(f, None) for f in files], root
    if len(plist) == 1:
        return [_Item(f, plist[0][1]) for f in files], root
    if len(plist) != len(files):
        raise ValueError(
            f"prompts: {len(plist)} prompts for {len(files)} images; give one prompt per image (paired with the "
            "sorted file names), a single prompt for all, or a .jsonl whose lines name their image "
            '({"image": "a.png", "prompt": "..."})'
        )
    return [_Item(f, p) for f, (_, p) in zip(files, plist)], root


# ------------------------------------------------------------------ output
def _atomic_save(path: str, array: np.ndarray) -> None:
    tmp = path + ".tmp.npy"
    np.save(tmp, array)
    os.replace(tmp, path)


def _atomic_json(path: str, payload: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def _fingerprint(items: list[_Item], model_info: dict, options: dict) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"model": model_info, "options": options}, sort_keys=True).encode())
    for it in items:
        h.update(json.dumps([it.image, it.prompt]).encode())
    return h.hexdigest()


def _model_info(enc) -> dict:
    info = {"projection_dim": enc.projection_dim, "image_size": enc.config.vision.image_size,
            "context_length": enc.context_length, "dtype": enc.dtype}
    if enc.path is not None:
        info["path"] = os.path.abspath(enc.path)
        with open(os.path.join(enc.path, "config.json"), "rb") as f:
            info["config_sha256"] = hashlib.sha256(f.read()).hexdigest()
        w = os.path.join(enc.path, "model.safetensors")
        if os.path.isfile(w):
            info["weights_bytes"] = os.path.getsize(w)
    return info


def _shard_done(sdir: str, k: int, expect_items: int) -> dict | None:
    path = os.path.join(sdir, f"shard-{k:05d}.json")
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            rec = json.load(f)
    except (OSError, json.JSONDecodeError):
        return None
    if rec.get("items") != expect_items:
        return None
    for col in ("images", "texts"):
        if col in rec and not os.path.isfile(os.path.join(sdir, rec[col])):
            return None
    return rec


def _load_one(item: _Item):
    from .encoder import open_image

    try:
        return open_image(item.image), None
    except Exception as exc:  # noqa: BLE001 - any decoder failure is reported, not fatal
        return None, f"{type(exc).__name__}: {exc}"


def _l2(a: np.ndarray) -> np.ndarray:
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), np.finfo(np.float32).tiny)


def _encode_padded(fn, arrays: tuple, b: int) -> np.ndarray:
    m = arrays[0].shape[0]
    if m < b:
        arrays = tuple(np.concatenate([a, np.repeat(a[-1:], b - m, 0)]) for a in arrays)
    return np.asarray(fn(*arrays))[:m]


def embed(
    model: Any,
    *,
    out: str | os.PathLike,
    images: Any = None,
    prompts: Any = None,
    batch_size: int = 64,
    shard_rows: int = 4096,
    dtype: str | None = None,
    device: Any = None,
    normalize: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
) -> EmbedResult:
    """Embed images and prompts with a CLIP checkpoint into a shard directory.

    Args:
      model: a checkpoint directory (see :func:`load_clip`) or a loaded
        :class:`clipcore.encoder.CLIPEncoder`.
      out: output directory; gets ``manifest.json`` and ``shards/``.
      images: a folder (searched recursively, sorted), a glob or a list of files.
      prompts: a ``.txt`` / ``.jsonl`` file or a list of strings (see the
        module docstring for the pairing rules).
      batch_size: images (texts) per compiled call.
      shard_rows: inputs per shard (the resume granularity).
      dtype, device: passed to :func:`load_clip` when ``model`` is a path.
      normalize: L2-normalise the stored embeddings (default: raw projected
        features, as transformers' ``get_*_features`` return them).
      overwrite: discard a different earlier run in ``out`` instead of refusing.
      progress: a bar of inputs (``None``: after 2 s; ``True``: at once; ``False``: never).

    Returns:
      :class:`EmbedResult`; rows are ``[n, projection_dim]`` float32 images
      (``shards/images-k.npy``) and their prompts (``shards/texts-k.npy``).

    Raises:
      FileNotFoundError / ValueError: missing inputs, unpairable prompts, or
        an ``out`` directory holding a different run.
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    shard_rows = check_positive_int(shard_rows, "shard_rows")
    progress = check_progress(progress)
    if out is None:
        raise ValueError("out: missing; pass the output directory")
    items, root = _pair(images, prompts)
    has_img = items[0].image is not None
    has_txt = items[0].prompt is not None
    enc = _encoder(model, dtype, device, has_img=has_img, has_txt=has_txt)
    out = os.path.abspath(os.fspath(out))
    info = _model_info(enc)
    sdir = _start_run(out, items, info, {"normalize": bool(normalize), "shard_rows": shard_rows}, overwrite)
    run = _Run(enc, sdir, root, batch_size, bool(normalize), has_img, has_txt)
    records, written, resumed = _embed_shards(run, items, shard_rows, progress)
    return _write_manifest(out, records, info, normalize, has_img, has_txt, root, len(items), written, resumed)


def _encoder(model: Any, dtype: Any, device: Any, *, has_img: bool, has_txt: bool):
    """The loaded encoder (``model`` itself, or :func:`load_clip` of a path), able to encode what is asked."""
    enc = model if hasattr(model, "encode_images") else load_clip(model, dtype=dtype, device=device)
    if has_txt and enc.tokenizer is None:
        raise ValueError("model: loaded without its tokenizer; prompts cannot be encoded")
    if has_img and enc.processor is None:
        raise ValueError("model: loaded without its image processor; images cannot be encoded")
    return enc


def _start_run(out: str, items: list[_Item], info: dict, options: dict, overwrite: bool) -> str:
    """The shard directory of ``out``, holding this run's state file: an earlier run of the same inputs,
    model and options is kept (resumed); a different one is refused, or discarded with ``overwrite``."""
    sdir = os.path.join(out, _SHARD_DIR)
    fp = _fingerprint(items, info, options)
    state_path = os.path.join(sdir, _STATE)
    if os.path.isfile(state_path):
        with open(state_path) as f:
            old = json.load(f).get("fingerprint")
        if old != fp:
            if not overwrite:
                raise ValueError(
                    f"out: {out} holds embeddings of a different run (other inputs, model or options); "
                    "choose another output directory or pass overwrite=True (--overwrite)"
                )
            for name in os.listdir(sdir):
                os.remove(os.path.join(sdir, name))
            if os.path.exists(os.path.join(out, MANIFEST)):
                os.remove(os.path.join(out, MANIFEST))
    os.makedirs(sdir, exist_ok=True)
    _atomic_json(state_path, {"fingerprint": fp, "items": len(items), "model": info, "options": options})
    return sdir


@dataclasses.dataclass
class _Run:
    """What every shard of one :func:`embed` call shares (the pool, bar and prompt cache are set per call)."""

    enc: Any
    sdir: str
    root: str | None
    batch_size: int
    normalize: bool
    has_img: bool
    has_txt: bool
    pool: Any = None
    bar: Any = None
    text_cache: dict = dataclasses.field(default_factory=dict)

    def rel(self, p: str | None) -> str | None:
        """An image path relative to the images root (as the manifest names it)."""
        return None if p is None else os.path.relpath(p, self.root)


def _embed_shards(run: _Run, items: list[_Item], shard_rows: int, progress: bool | None) -> tuple[list, int, int]:
    """Embed every shard not already on disk; returns ``(records, shards written, shards resumed)``."""
    written = resumed = 0
    records = []
    run.pool = ThreadPoolExecutor(max_workers=2) if run.has_img else None
    run.bar = bar(len(items), "embed", progress, unit="inputs", unit_scale=False)
    try:
        for k, start in enumerate(range(0, len(items), shard_rows)):
            chunk = items[start:start + shard_rows]
            rec = _shard_done(run.sdir, k, len(chunk))
            if rec is not None:
                records.append(rec)
                resumed += 1
                run.bar.update(len(chunk))
                continue
            records.append(_embed_shard(run, chunk, k, start))
            written += 1
    finally:
        run.bar.close()
        if run.pool is not None:
            run.pool.shutdown(wait=True)
    return records, written, resumed


def _embed_shard(run: _Run, chunk: list[_Item], k: int, start: int) -> dict:
    """Embed shard ``k`` (items ``start ...``), write its ``.npy`` files and its record; returns the record."""
    rec = {"shard": k, "items": len(chunk), "first_item": start, "rows": [], "skipped": []}
    kept = list(range(len(chunk)))
    img_rows = txt_rows = None
    if run.has_img:
        kept, img_rows = _image_rows(run, chunk, start, rec["skipped"])
    if run.has_txt:
        txt_rows = _text_rows(run, chunk, kept)
        if not run.has_img:
            run.bar.update(len(chunk))
    for col, rows in (("images", img_rows), ("texts", txt_rows)):
        if rows is None:
            continue
        name = f"{col}-{k:05d}.npy"
        _atomic_save(os.path.join(run.sdir, name), (_l2(rows) if run.normalize else rows).astype(np.float32))
        rec[col] = name
    rec["rows"] = [{"item": start + j, "image": run.rel(chunk[j].image), "prompt": chunk[j].prompt} for j in kept]
    _atomic_json(os.path.join(run.sdir, f"shard-{k:05d}.json"), rec)
    return rec


def _image_rows(run: _Run, chunk: list[_Item], start: int, skipped: list) -> tuple[list[int], np.ndarray]:
    """Image features ``[len(kept), projection_dim]`` of a shard's readable images, and their indices
    ``kept`` in ``chunk``; unreadable ones are appended to ``skipped``.  Decoding and preprocessing run on
    the pool while the encoder works."""
    from .encoder import batch_bucket

    enc = run.enc
    loaded = list(run.pool.map(_load_one, chunk))
    kept = []
    for j, (_im, err) in enumerate(loaded):
        if err is None:
            kept.append(j)
        else:
            skipped.append({"item": start + j, "image": run.rel(chunk[j].image), "prompt": chunk[j].prompt,
                            "error": err})
    rows = np.empty((len(kept), enc.projection_dim), np.float32)
    b = batch_bucket(len(kept), run.batch_size)
    futures = []
    for a in range(0, len(kept), b):
        pics = [loaded[j][0] for j in kept[a:a + b]]
        futures.append((a, run.pool.submit(enc.preprocess_images, pics)))
    for a, fut in futures:
        px = fut.result()
        rows[a:a + px.shape[0]] = _encode_padded(enc.image_features, (px,), b)
        run.bar.update(px.shape[0])
    run.bar.update(len(chunk) - len(kept))
    return kept, rows


def _text_rows(run: _Run, chunk: list[_Item], kept: list[int]) -> np.ndarray:
    """Prompt features ``[len(kept), projection_dim]`` of the kept items (each distinct prompt encoded once
    per run)."""
    from .encoder import batch_bucket

    enc = run.enc
    todo = sorted({chunk[j].prompt for j in kept} - set(run.text_cache))
    if todo:
        b = batch_bucket(len(todo), run.batch_size)
        for a in range(0, len(todo), b):
            ids, mask = enc.tokenize(todo[a:a + b])
            feats = _encode_padded(enc.text_features, (ids, mask), b)
            run.text_cache.update(zip(todo[a:a + b], feats))
    if not kept:
        return np.empty((0, enc.projection_dim), np.float32)
    return np.stack([run.text_cache[chunk[j].prompt] for j in kept])


def _write_manifest(out, records, info, normalize, has_img, has_txt, root, n_items, written, resumed) -> EmbedResult:
    shards, rows, skipped, prompt_ids = [], [], [], {}
    for rec in records:
        skipped += rec["skipped"]
        for r in rec["rows"]:
            entry = {"image": r["image"]} if has_img else {}
            if has_txt:
                entry["prompt_id"] = prompt_ids.setdefault(r["prompt"], len(prompt_ids))
            entry["item"] = r["item"]
            rows.append(entry)
        if rec["rows"]:
            sh = {col: f"{_SHARD_DIR}/{rec[col]}" for col in ("images", "texts") if col in rec}
            sh["rows"] = len(rec["rows"])
            shards.append(sh)
    if not rows:
        raise ValueError(f"images: none of the {n_items} images could be read; see {out}/{_SHARD_DIR}/shard-*.json")
    d = info["projection_dim"]
    manifest = {
        "format": FORMAT, "n": len(rows),
        "d_images": d if has_img else None, "d_texts": d if has_txt else None,
        "dtype": "float32", "shards": shards,
        "model": info, "normalization": "l2" if normalize else "none",
        "images_root": root, "inputs": n_items,
        "prompts": list(prompt_ids), "rows": rows, "skipped": skipped,
    }
    path = os.path.join(out, MANIFEST)
    _atomic_json(path, manifest)
    return EmbedResult(out, path, len(rows), skipped, written, resumed)


def read_embed_manifest(directory: str | os.PathLike) -> dict:
    """The manifest of an :func:`embed` output directory (with ``rows`` and ``prompts``).

    Raises:
      FileNotFoundError / ValueError: no manifest, or not a clipcore one.
    """
    path = os.path.join(os.fspath(directory), MANIFEST)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"embeddings: {directory} has no {MANIFEST}; is it a finished `clipcore embed` output?")
    try:
        with open(path) as f:
            man = json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"embeddings: cannot read {path} ({exc})") from None
    if man.get("format") != FORMAT:
        raise ValueError(f"embeddings: {path} is not a clipcore shard manifest")
    return man
