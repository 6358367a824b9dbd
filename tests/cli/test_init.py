"""clipcore.cli: the parser lists every command, ``python -m clipcore.cli`` runs it, and building the parser
imports neither Flax, scikit-learn nor transformers."""

from __future__ import annotations

import re
import subprocess
import sys

from clipcore.cli import build_parser

COMMANDS = ["score", "edit", "demo", "compare", "clipscore", "embed", "table", "modes", "inspect", "mds", "cluster", "iin", "vae"]


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
    for c in COMMANDS:  # a long name is followed by a line break instead of a space
        assert re.search(rf"^    {c}\s", helped.stdout, re.M), c


def test_version_flag(capsys):
    import pytest

    from clipcore._version import __version__

    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"clipcore {__version__}"


def test_no_tracker_words_in_user_facing_text():
    """Help strings, descriptions and messages of the CLI name no "issue N" (users never see the tracker)."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2] / "python" / "clipcore" / "cli"
    hits = [f"{p.name}:{i}" for p in sorted(root.glob("*.py"))
            for i, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"\bissues?\b", line, re.I)]
    assert not hits, hits
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for text in [parser.format_help()] + [sub.choices[c].format_help() for c in COMMANDS]:
        assert not re.search(r"\bissue", text, re.I), text
