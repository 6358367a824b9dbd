"""``clipcore inspect PATH``: what a data set path holds, without scoring it.

The layout recognised (clipcore shards, clip-retrieval / LAION, DataComp, Parquet, plain files), the shards
and their rows, dimension, stored dtype, mean / min / max row norm, the pairing of images and texts (missing,
mismatched, empty shards) and, with ``--check``, a full scan naming every NaN / Inf / zero row by shard and
row (:func:`clipcore.sources.inspect`). Exit status 0 when nothing needs fixing, 1 otherwise (2 for a path
that cannot be read at all).
"""

from __future__ import annotations

import argparse

from ._common import environment, quiet_progress, write_json

__all__ = ["add_commands", "cmd_inspect"]


def cmd_inspect(args: argparse.Namespace) -> int:
    from ..sources import inspect

    report = inspect(args.path, args.check, images_key=args.images_key, texts_key=args.texts_key,
                     sample_rows=args.sample_rows, progress=quiet_progress(args))
    if not args.quiet:
        print(report)
    if args.json:
        write_json(args.json, {"command": "inspect", **report.to_dict(), "environment": environment()})
        if not args.quiet:
            print(f"wrote {args.json}")
    return 0 if report.ok else 1


def add_commands(sub) -> None:
    """Register ``inspect`` on the ``clipcore`` subparsers."""
    p = sub.add_parser("inspect", help="what an embedding folder or file holds: layout, shards, rows, norms, pairing",
                       description="Report the layout recognised (clipcore shards, clip-retrieval / LAION, DataComp, "
                                   "Parquet, .npy / .npz files), shards and rows per shard, dimension, dtype, "
                                   "mean / min / max row norm, how images and texts pair (missing, mismatched, "
                                   "empty shards) and the metadata columns. --check reads every row and names each "
                                   "NaN / Inf / zero row by shard and row. Exit status 0 when nothing needs "
                                   "fixing, 1 otherwise.")
    p.add_argument("path", metavar="PATH", help="a folder of a known layout, a file, or a glob of shard files")
    p.add_argument("--check", action="store_true",
                   help="scan every row: exact norms and every NaN / Inf / zero row (default: a seeded sample)")
    p.add_argument("--images-key", default=None,
                   help="the images' array inside .npz shards (DataComp: l14_img) or their Parquet column")
    p.add_argument("--texts-key", default=None,
                   help="the texts' array inside .npz shards (DataComp: l14_txt) or their Parquet column")
    p.add_argument("--sample-rows", type=int, default=10_000, metavar="N",
                   help="rows sampled for the norms without --check (default 10000)")
    p.add_argument("--json", default=None, metavar="OUT.json", help="write the report here")
    p.add_argument("--quiet", action="store_true", help="print nothing (the exit status tells)")
    p.set_defaults(func=cmd_inspect)
