"""`clipcore embed`, `clipcore table`, `clipcore modes`: the data commands.

* embed: image folder / prompt file → shard directory (``clipcore score
  --images OUT`` reads it), resumable, unreadable images reported.
* table: the prompt × image cosine table, printed, as CSV and as a PNG heat map.
* modes: top eigenvectors of S (prompt-independent) or R (prompt-explained)
  with their top-scoring images: JSON, and one image grid PNG per mode when
  the embed manifest knows the image files.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np

from ._common import add_source_options, environment, pairing_lines, read_pair, source_kwargs, table, write_json

__all__ = ["add_commands", "cmd_embed", "cmd_table", "cmd_modes"]


def _out(args, *lines):
    if not getattr(args, "quiet", False):
        for line in lines:
            print(line)


# --------------------------------------------------------------------- embed
def cmd_embed(args: argparse.Namespace) -> int:
    from ..embed import embed

    if args.images is None and args.prompts is None:
        raise ValueError("images: nothing to embed; pass --images and/or --prompts")
    res = embed(args.model, out=args.out, images=args.images, prompts=args.prompts, batch_size=args.batch_size,
                shard_rows=args.shard_rows, dtype=args.dtype, device=args.device, normalize=args.normalize,
                overwrite=args.overwrite, progress=False if args.quiet else None)
    _out(args, f"embedded {res.n} rows into {res.directory} ({res.shards_written} shard(s) written, "
               f"{res.shards_resumed} already on disk); manifest {res.manifest}")
    for s in res.skipped:
        print(f"skipped: {s['image']}: {s['error']}", file=sys.stderr)
    if res.skipped:
        _out(args, f"{len(res.skipped)} input(s) skipped (unreadable); the manifest lists them under 'skipped'")
    if args.json:
        write_json(args.json, {"command": "embed", **res._asdict(), "environment": environment()})
    return 0


# --------------------------------------------------------------------- table
def _embed_dir(path) -> dict | None:
    from ..sources import MANIFEST

    if isinstance(path, str) and os.path.isdir(path) and os.path.isfile(os.path.join(path, MANIFEST)):
        from ..embed import read_embed_manifest

        return read_embed_manifest(path)
    return None


def _column(path: str, col: str, args=None) -> np.ndarray:
    """Column ``col`` (``"images"`` / ``"texts"``) of a path, read whole with the file options of ``args``."""
    from .._pipeline.inputs import column_array, resolve_source_options

    files = resolve_source_options(**source_kwargs(args))
    return np.asarray(column_array(path, col, role=col, nonzero=True, files=files))


def _table_texts(path: str, labels_file: str | None, args=None):
    man = _embed_dir(path)
    if man is not None and "prompts" in man and man.get("d_texts"):
        t = _column(path, "texts", args)
        first = {}
        for row, r in enumerate(man["rows"]):
            first.setdefault(r["prompt_id"], row)
        ids = sorted(first)
        return t[[first[i] for i in ids]], [man["prompts"][i] for i in ids]
    t = _column(path, "texts", args)
    return t, _read_labels(labels_file, t.shape[0], "text_labels")


def _table_images(path: str, labels_file: str | None, args=None):
    man = _embed_dir(path)
    x = _column(path, "images", args)
    if man is not None and labels_file is None and man.get("rows") and "image" in man["rows"][0]:
        return x, [r["image"] for r in man["rows"]]
    return x, _read_labels(labels_file, x.shape[0], "image_labels")


def _read_labels(path: str | None, n: int, name: str):
    if path is None:
        return None
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{name}: file not found: {path}")
    with open(path, encoding="utf-8") as f:
        labels = [line.rstrip("\n") for line in f if line.strip()]
    if len(labels) != n:
        raise ValueError(f"{name}: {path} has {len(labels)} labels for {n} embeddings")
    return labels


def cmd_table(args: argparse.Namespace) -> int:
    from ..tables import similarity_table

    texts_path = args.texts or args.embeddings
    images_path = args.images or args.embeddings
    if texts_path is None or images_path is None:
        raise ValueError("texts: pass --embeddings DIR (a `clipcore embed` output) or both --texts and --images")
    pairing = None
    if _embed_dir(texts_path) is None and os.path.abspath(texts_path) == os.path.abspath(images_path):
        # one folder holding both columns: read paired (shards by number, --skip-incomplete)
        x, t, pairing = read_pair(images_path, None, args)
        tl, il = (_read_labels(args.text_labels, t.shape[0], "text_labels"),
                  _read_labels(args.image_labels, x.shape[0], "image_labels"))
    else:
        t, tl = _table_texts(texts_path, args.text_labels, args)
        x, il = _table_images(images_path, args.image_labels, args)
    table = similarity_table(t, x, tl, il)
    if not args.quiet:
        k = args.max_images
        cut = table.values.shape[1] > k
        shown = table._replace(values=table.values[:, :k], image_labels=table.image_labels[:k]) if cut else table
        print(shown.format(digits=args.digits))
        if cut:
            print(f"(printed: the first {k} of {table.values.shape[1]} images, --max-images to print more; "
                  "the CSV, PNG and JSON hold every image)")
    table.to_csv(args.csv)
    table.plot(args.png)
    _out(args, *pairing_lines(pairing), f"wrote {args.csv} and {args.png}")
    if args.json:
        write_json(args.json, {"command": "table", "values": table.values, "text_labels": table.text_labels,
                                "image_labels": table.image_labels, "environment": environment(),
                                **({"pairing": pairing} if pairing is not None else {})})
    return 0


# --------------------------------------------------------------------- modes
def _image_grid(files: list, scores: np.ndarray, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..encoder._preprocess import open_image

    m = len(files)
    cols = int(math.ceil(math.sqrt(m)))
    rows = int(math.ceil(m / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(max(1.8 * cols, 5.0), 1.9 * rows + 0.5), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, f, s in zip(axes.ravel(), files, scores):
        try:
            im = open_image(f)
            im.thumbnail((160, 160))
            ax.imshow(np.asarray(im))
        except Exception:  # noqa: BLE001 - a grid cell, not the run
            ax.text(0.5, 0.5, "unreadable", ha="center", va="center")
        ax.set_title(f"{os.path.basename(f)[:18]}\n{s:.3f}", fontsize=7)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _local_file(path, root: str | None) -> str | None:
    """``image_path`` as a local file: as given, or under the data set's folder; None otherwise (a URL, a
    file not on this machine)."""
    if not isinstance(path, str) or not path or "://" in path:
        return None
    for candidate in (path, os.path.join(root, path) if root else None):
        if candidate and os.path.isfile(candidate):
            return candidate
    return None


def _metadata_files(args: argparse.Namespace, rows: np.ndarray, root: str | None):
    """For a folder with per-row metadata (clip-retrieval / LAION ``image_path``, a caption column): ``({row:
    local image file or None}, {row: caption})`` of the given rows only; ``(None, None)`` without metadata."""
    from .._pipeline.inputs import file_source, resolve_source_options
    from ..sources import CAPTION_COLUMNS

    src = file_source(args.images, args.texts, resolve_source_options(**source_kwargs(args)))
    if not src.shards or all(s.metadata is None for s in src.shards):
        return None, None
    import pyarrow.parquet as pq

    names = set(pq.read_schema(next(s.metadata for s in src.shards if s.metadata is not None)).names)
    files = captions = None
    if "image_path" in names:
        files = {int(r): _local_file(p, root) for r, p in zip(rows, src.metadata("image_path", rows))}
        files = files if any(files.values()) else None
    caption = next((c for c in CAPTION_COLUMNS if c in names), None)
    if caption is not None:
        captions = {int(r): c for r, c in zip(rows, src.metadata(caption, rows))}
    return files, captions


def _mode_files(args: argparse.Namespace, res):
    """(each row's image file, each row's prompt) of the rows ``res`` lists: from a `clipcore embed` manifest,
    or a folder's metadata; either may be None."""
    man = _embed_dir(args.images)
    if man is None:
        root = (res.pairing or {}).get("root")
        return _metadata_files(args, np.unique(res.indices), root if isinstance(root, str) else None)
    files = prompts = None
    if man.get("images_root") and man.get("rows") and "image" in man["rows"][0]:
        files = {i: os.path.join(man["images_root"], r["image"]) for i, r in enumerate(man["rows"])}
    if files is not None and man.get("prompts") and "prompt_id" in man["rows"][0]:
        prompts = {i: man["prompts"][r["prompt_id"]] for i, r in enumerate(man["rows"])}
    return files, prompts


def cmd_modes(args: argparse.Namespace) -> int:
    from ..modes import modes

    res = modes(args.images, args.texts, part=args.part, k=args.k, per_mode=args.per_mode, kernel=args.kernel,
                sigma=args.sigma, rff_features=args.rff_features, key=args.seed, normalize=args.normalize,
                rtol=args.rtol, ridge=args.ridge, progress=False if args.quiet else None, **source_kwargs(args))
    files, prompts = _mode_files(args, res)
    os.makedirs(args.out, exist_ok=True)
    payload = {"command": "modes", **res.summary(), "environment": environment()}
    pngs = []
    if prompts is not None:
        payload["prompts"] = [[prompts[int(i)] for i in row] for row in res.indices]
    if files is not None:
        payload["files"] = [[files[int(i)] for i in row] for row in res.indices]
        for j in range(res.indices.shape[0]):
            p = os.path.join(args.out, f"mode-{j + 1}.png")
            share = res.eigenvalues[j] / res.trace if res.trace > 0 else float("nan")
            _image_grid([files[int(i)] or "(not a local file)" for i in res.indices[j]], res.scores[j], p,
                        f"{args.part} mode {j + 1}: eigenvalue {res.eigenvalues[j]:.4g} ({100 * share:.1f}% of trace)")
            pngs.append(p)
    payload["pngs"] = pngs
    jpath = os.path.join(args.out, "modes.json")
    write_json(jpath, payload)
    if not args.quiet:
        rows = [(j + 1, float(res.eigenvalues[j]), float(res.eigenvalues[j] / res.trace) if res.trace > 0 else None,
                 " ".join(str(int(i)) for i in res.indices[j][:8])) for j in range(len(res.eigenvalues))]
        print(table(rows, ("mode", "eigenvalue", "share of trace", "top rows")))
        print(f"\npart={res.part} kernel={res.kernel} n={res.n} features={res.num_features}")
        for line in pairing_lines(res.pairing):
            print(line)
        print(f"wrote {jpath}" + (f" and {len(pngs)} image grid(s)" if pngs else
                                  " (no image files known: grids need a `clipcore embed` directory, or a folder "
                                  "whose metadata image_path names local files)"))
    return 0


# -------------------------------------------------------------------- parser
def add_commands(sub) -> None:
    """Register ``embed``, ``table`` and ``modes`` on the ``clipcore`` subparsers."""
    e = sub.add_parser("embed", help="embed an image folder and a prompt file with a local CLIP checkpoint",
                       description="Encode images (a folder, searched recursively, or a glob) and prompts (.txt: one "
                                   "a line, paired with the sorted images or one for all; .jsonl: lines "
                                   '{"image": ..., "prompt": ...}) with a local Hugging Face CLIP checkpoint. Writes '
                                   ".npy shards plus manifest.json to --out (read by `clipcore score --images OUT`); "
                                   "a rerun resumes, unreadable images are reported and recorded.")
    e.add_argument("--model", required=True, metavar="DIR", help="checkpoint directory (config.json + model.safetensors)")
    e.add_argument("--images", default=None, metavar="FOLDER_OR_GLOB", help="image folder or glob")
    e.add_argument("--prompts", default=None, metavar="FILE", help="prompts: .txt or .jsonl")
    e.add_argument("--out", required=True, metavar="OUT_DIR", help="output directory")
    e.add_argument("--batch-size", type=int, default=64, help="inputs per compiled call (default 64)")
    e.add_argument("--shard-rows", type=int, default=4096, help="inputs per shard, the resume unit (default 4096)")
    e.add_argument("--device", default=None, help="cpu, gpu, gpu:1, tpu (default: JAX's default device)")
    e.add_argument("--dtype", choices=("float32", "bfloat16"), default=None, help="compute dtype (default float32)")
    e.add_argument("--normalize", action="store_true", help="store L2-normalised embeddings")
    e.add_argument("--overwrite", action="store_true", help="replace a different earlier run in --out")
    e.add_argument("--json", default=None, metavar="OUT.json", help="write a summary here")
    e.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    e.set_defaults(func=cmd_embed)

    t = sub.add_parser("table", help="prompt × image cosine table (text, CSV, PNG heat map)",
                       description="Cosine of every prompt with every image. Inputs: --embeddings DIR (a `clipcore "
                                   "embed` output: its distinct prompts × its images, labelled) or --texts and "
                                   "--images (.npy or such directories).")
    t.add_argument("--embeddings", default=None, metavar="DIR", help="a `clipcore embed` output directory")
    t.add_argument("--texts", default=None, metavar="T.npy", help="prompt embeddings (rows)")
    t.add_argument("--images", default=None, metavar="X.npy", help="image embeddings (columns)")
    t.add_argument("--text-labels", default=None, metavar="FILE.txt", help="one row label a line")
    t.add_argument("--image-labels", default=None, metavar="FILE.txt", help="one column label a line")
    add_source_options(t)
    t.add_argument("--max-images", type=int, default=40,
                   help="image columns printed (default 40; the CSV, PNG and JSON hold every image)")
    t.add_argument("--digits", type=int, default=3, help="decimals printed (default 3)")
    t.add_argument("--csv", default="similarity_table.csv", help="CSV output (default similarity_table.csv)")
    t.add_argument("--png", default="similarity_table.png", help="heat map (default similarity_table.png)")
    t.add_argument("--json", default=None, metavar="OUT.json")
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=cmd_table)

    m = sub.add_parser("modes", help="top modes of S (prompt-independent) or R (prompt-explained) with their images",
                       description="Eigenvectors of the Schur complement S (--part complement) or the text part R "
                                   "(--part text) and, per mode, the images scoring highest on it, φ(x)·v. Writes "
                                   "OUT/modes.json and, for a `clipcore embed` directory, OUT/mode-k.png grids.")
    m.add_argument("--images", required=True, metavar="X", help="image embeddings, or a `clipcore embed` directory")
    m.add_argument("--texts", default=None, metavar="T", help="prompt embeddings (omit for an embed directory)")
    add_source_options(m)
    m.add_argument("--part", choices=("complement", "text", "image"), default="complement")
    m.add_argument("--k", type=int, default=5, help="modes (default 5)")
    m.add_argument("--per-mode", type=int, default=16, help="images per mode (default 16)")
    m.add_argument("--kernel", choices=("cosine", "gaussian"), default="cosine")
    m.add_argument("--sigma", type=float, default=None)
    m.add_argument("--rff-features", type=int, default=None, metavar="D", help="required for --kernel gaussian")
    m.add_argument("--seed", type=int, default=None)
    m.add_argument("--normalize", action="store_true")
    m.add_argument("--rtol", type=float, default=None)
    m.add_argument("--ridge", type=float, default=None)
    m.add_argument("--out", default="clipcore_modes", metavar="DIR", help="output directory (default clipcore_modes)")
    m.add_argument("--quiet", action="store_true")
    m.set_defaults(func=cmd_modes)
