"""What the ``clipcore`` commands share: JSON writing, environment and file provenance, tables, the
kernel options.

Every command prints a readable table and can write JSON that carries the
provenance of each number (SPEC.md, "Results carry their provenance").
Heavy modules (JAX's devices, the sources) are imported inside the functions
that need them, so that building the parser stays cheap.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
from typing import Any, Sequence

import numpy as np

__all__ = [
    "jsonable",
    "environment",
    "write_json",
    "table",
    "add_kernel_options",
    "add_pair_inputs",
    "add_source_options",
    "source_kwargs",
    "read_pair",
    "pairing_lines",
    "kernel_kwargs",
    "HASH_LIMIT",
    "file_provenance",
    "inputs_provenance",
    "quiet_progress",
]

#: Files up to this size are hashed (SHA-256) into the JSON provenance;
#: larger ones are identified by size and modification time.
HASH_LIMIT = 1 << 28


# ------------------------------------------------------------------ JSON
def jsonable(v: Any) -> Any:
    """``v`` with NumPy arrays / scalars as lists / numbers and non-finite floats as strings."""
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return jsonable(v.tolist())
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if math.isfinite(f) else str(f)
    if isinstance(v, np.integer):
        return int(v)
    return v


def environment() -> dict:
    """Versions, platform, the default JAX device and the date (UTC): the provenance of a run."""
    import jax

    from .._version import __version__

    return {
        "clipcore": __version__,
        "jax": jax.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(jax.devices()[0]),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def write_json(path: str, payload: dict) -> None:
    """Write ``payload`` (made :func:`jsonable`) to ``path``, creating its directory."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    with open(path, "w") as f:
        json.dump(jsonable(payload), f, indent=2)
        f.write("\n")


# ------------------------------------------------------------------ tables
def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned; floats to 6 digits."""
    cells = [[str(h) for h in header]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for j, r in enumerate(cells):
        lines.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
            return f"{v:.6e}"
        return f"{v:.6f}"
    return "-" if v is None else str(v)


def quiet_progress(args: argparse.Namespace) -> bool | None:
    """The progress option of a command: ``False`` with ``--quiet``, else ``None`` (a bar after 2 s)."""
    return False if getattr(args, "quiet", False) else None


# ------------------------------------------------------------ shared options
def add_kernel_options(p: argparse.ArgumentParser) -> None:
    """The kernel, σ, RFF, seed / ω, convention, dtype, rtol and ridge flags of ``score`` and ``edit``."""
    g = p.add_argument_group("kernel")
    g.add_argument("--kernel", choices=("cosine", "gaussian"), default="cosine",
                   help="cosine (φ = x/‖x‖, default) or gaussian")
    g.add_argument("--sigma", type=float, default=None,
                   help="Gaussian bandwidth (default: median pairwise distance of the images)")
    g.add_argument("--rff-features", type=int, default=None, metavar="D",
                   help="random Fourier frequencies (2D features); omit for the exact Gaussian kernel")
    g.add_argument("--seed", type=int, default=None, help="seed of the RFF frequencies (default 0)")
    g.add_argument("--omega", default=None, metavar="W.npy",
                   help="RFF frequencies [d, D] already divided by sigma (overrides --seed)")
    g.add_argument("--normalize", action="store_true", help="L2-normalise rows before the Gaussian kernel")
    g.add_argument("--convention", choices=("paper", "clip-dissection"), default="paper",
                   help="paper (default) or the reference code's column-cosine convention")
    g.add_argument("--dtype", choices=("float64", "float32"), default=None,
                   help="precision of the block products (default: follow the input: float32 rows get float32 products, "
                        "float64 rows float64; accumulation and linear algebra are float64 either way)")
    g.add_argument("--rtol", type=float, default=None, help="pseudo-inverse cutoff (default D·eps32)")
    g.add_argument("--ridge", type=float, default=None, help="use (C_TT + ridge·I)⁻¹ instead of the cut pinv")


def add_pair_inputs(p: argparse.ArgumentParser) -> None:
    """``--images``, ``--texts`` and the file options (:func:`add_source_options`)."""
    g = p.add_argument_group("inputs")
    g.add_argument("--images", required=True, metavar="X.npy",
                   help="image embeddings [n, d]: .npy, .npz, .parquet, a directory or glob of shards, or a folder of "
                        "a known layout (clipcore shards, clip-retrieval / LAION, DataComp, Parquet; then --texts "
                        "may be omitted); large inputs are streamed")
    g.add_argument("--texts", default=None, metavar="T.npy", help="text embeddings [n, d], row i ↔ image i")
    add_source_options(g)


def add_source_options(g) -> None:
    """``--images-key``, ``--texts-key``, ``--skip-incomplete`` on a parser or argument group: how files are
    read (the ``images_key`` / ``texts_key`` / ``skip_incomplete`` of the entry points)."""
    g.add_argument("--images-key", default=None, metavar="NAME",
                   help="the images' array inside .npz shards (DataComp: l14_img) or their Parquet column")
    g.add_argument("--texts-key", default=None, metavar="NAME",
                   help="the texts' array inside .npz shards (DataComp: follows --images-key, l14_txt) or their "
                        "Parquet column")
    g.add_argument("--skip-incomplete", action="store_true",
                   help="shards paired by number (clip-retrieval / LAION, DataComp, Parquet): use only the complete "
                        "pairs and report the shards left out (printed and in the JSON) instead of stopping with an "
                        "error that names them")


def source_kwargs(args: argparse.Namespace) -> dict:
    """``images_key``, ``texts_key``, ``skip_incomplete`` of the entry points from :func:`add_source_options`'
    flags (absent flags: the defaults)."""
    return dict(images_key=getattr(args, "images_key", None), texts_key=getattr(args, "texts_key", None),
                skip_incomplete=bool(getattr(args, "skip_incomplete", False)))


def read_pair(images, texts, args: argparse.Namespace, *, nonzero: bool = True):
    """``--images`` / ``--texts`` read whole with the file options: ``(images, texts, pairing)``; the rows
    checked (NaN / Inf / zero rows named by shard and row), ``pairing`` the shards' pairing dict or None."""
    from .._pipeline.inputs import paired_arrays, resolve_source_options

    got = paired_arrays(images, texts, nonzero=nonzero, files=resolve_source_options(**source_kwargs(args)))
    if got.texts is None:
        raise ValueError("texts: missing; pass --texts, or --images a folder that holds both columns")
    return np.asarray(got.images), np.asarray(got.texts), got.pairing


def pairing_lines(pairing: dict | None) -> list[str]:
    """What a terminal shows of a pairing that left shards out (none when complete or absent)."""
    if not pairing or pairing.get("complete", True):
        return []
    lines = [f"pairing: {pairing['shards']} complete shard pair(s), {pairing['rows']} rows used; "
             f"{len(pairing['skipped'])} shard(s) with {pairing['skipped_rows']} image rows left out (--skip-incomplete)"]
    problems = [*pairing.get("missing", ()), *pairing.get("mismatched", ()), *pairing.get("empty", ())]
    return lines + [f"  {p}" for p in problems[:20]] + ([f"  ... ({len(problems)} in all)"] if len(problems) > 20 else [])


def kernel_kwargs(args: argparse.Namespace) -> dict:
    """Keyword arguments of the scores / editor from :func:`add_kernel_options`' flags (ω loaded)."""
    from ..io import load_embeddings

    kw: dict = dict(kernel=args.kernel, sigma=args.sigma, rff_features=args.rff_features,
                    convention=args.convention, dtype=args.dtype, rtol=args.rtol, ridge=args.ridge,
                    normalize=args.normalize)
    if args.omega is not None:
        kw["omega"] = np.asarray(load_embeddings(args.omega, name="omega"))
    elif args.seed is not None:
        kw["key"] = args.seed
    return kw


# -------------------------------------------------------------- provenance
def file_provenance(path: str, name: str, images_key: str | None = None, texts_key: str | None = None) -> dict:
    """Absolute path, shape / rows / dtype / shard count when readable as rows, size and SHA-256 (or mtime)."""
    from ..io import file_digest
    from ..sources import MANIFEST, row_source

    out: dict = {"path": os.path.abspath(path)}
    try:
        src = row_source(path, name, key=name, images_key=images_key, texts_key=texts_key)
        out.update(shape=[src.n, src.d], rows=src.n, dim=src.d, dtype=str(src.dtype), files=len(src.parts))
    except (ValueError, FileNotFoundError):
        pass
    target = os.path.join(path, MANIFEST) if os.path.isdir(path) else path
    if os.path.isfile(target):
        size = os.path.getsize(target)
        out["bytes"] = size
        if size <= HASH_LIMIT:
            out["sha256"] = file_digest(target)
        else:
            out["mtime"] = os.path.getmtime(target)
    return out


def inputs_provenance(args: argparse.Namespace) -> dict:
    """:func:`file_provenance` of ``--images``, ``--texts`` and ``--omega`` where given."""
    keys = dict(images_key=getattr(args, "images_key", None), texts_key=getattr(args, "texts_key", None))
    out = {"images": file_provenance(args.images, "images", **keys)}
    if args.texts is not None:
        out["texts"] = file_provenance(args.texts, "texts", **keys)
    if getattr(args, "omega", None):
        out["omega"] = file_provenance(args.omega, "omega")
    return out
