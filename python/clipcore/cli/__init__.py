"""The ``clipcore`` command: score, edit, demo, compare, clipscore, embed, table, modes, inspect, mds, cluster, iin.

Every command prints a readable table and can write JSON that carries the
provenance of each number (SPEC.md, "Results carry their provenance").
Errors in the input are reported in one line (``clipcore: error: ...``) with
exit status 2.

One module per command group, each with ``add_commands(subparsers)``:
:mod:`.score` (score, edit, demo), :mod:`.compare` (compare, clipscore), :mod:`.data` (embed, table, modes),
:mod:`.inspect`, :mod:`.mds`, :mod:`.cluster`, :mod:`.iin`, :mod:`.vae`; what they share is in
:mod:`._common`. The command modules import Flax, transformers and
scikit-learn only when their command runs, so ``clipcore score`` never pays
for them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .._version import __version__
from . import cluster, compare, data, iin, inspect, mds, score, vae

__all__ = ["main", "build_parser"]

#: The command groups, in the order ``clipcore --help`` lists them.
_GROUPS = (score, compare, data, inspect, mds, cluster, iin, vae)


def build_parser() -> argparse.ArgumentParser:
    """The ``clipcore`` argument parser with every command registered."""
    p = argparse.ArgumentParser(
        prog="clipcore",
        description="Schur Complement Entropy, Vendi, RKE and embedding editing for CLIP embeddings.",
    )
    p.add_argument("--version", action="version", version=f"clipcore {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for group in _GROUPS:
        group.add_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); the exit status (2 for an input error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        print(f"clipcore: error: {exc}", file=sys.stderr)
        return 2
