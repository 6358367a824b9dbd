"""clipcore.cli: the parser lists every command, ``python -m clipcore.cli`` runs it, and building the parser
imports neither Flax, scikit-learn nor transformers."""

from __future__ import annotations

import subprocess
import sys

from clipcore.cli import build_parser

COMMANDS = ["score", "edit", "demo", "embed", "table", "modes", "mds", "cluster", "iin"]


def test_parser_lists_every_command():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert list(sub.choices) == COMMANDS


def test_module_entry_point_and_light_parser():
    code = ("import sys; from clipcore.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('flax', 'sklearn', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    helped = subprocess.run([sys.executable, "-m", "clipcore.cli", "--help"], capture_output=True, text=True)
    assert helped.returncode == 0
    for c in COMMANDS:
        assert f"    {c} " in helped.stdout
