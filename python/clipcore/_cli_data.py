"""`clipcore` subcommands (placeholder: nothing registered yet)."""

from __future__ import annotations


def add_commands(sub) -> None:  # noqa: D103 - filled in by its issue
    return None
