"""The `hpotool` command line: the only package that prints for the user or sets exit codes.

`root` holds the typer app and `main`; each command family registers its commands on it when imported,
in the order `hpotool --help` lists them. Heavy libraries (torch, optuna, plotly) are imported inside
the commands that need them, so `hpotool --help` stays fast.
"""

from hpotool.cli.root import app, main

# Imported for the commands they register, in this order: optimize, report, export-best, train,
# train-from-best, studies, trials, fail-stale, audit, refine, prune-audit.
from hpotool.cli import optimize, outputs, train, browse, stale, stages  # noqa: F401  # isort: skip

__all__ = ["app", "main"]
