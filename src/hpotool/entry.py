"""The `hpotool` console script and `python -m hpotool`: the CLI, and a Ctrl-C while it loads.

A Ctrl-C in the first moments, while `hpotool.cli` imports typer, fell outside typer's handling (which
exits 130 without a word) and printed a KeyboardInterrupt traceback. This module imports nothing but `os` and
`signal`, so the guard below covers every import the CLI makes.
"""

from __future__ import annotations

import os


def main() -> None:
    """Load and run the CLI (`hpotool.cli.main`); a Ctrl-C before typer takes over ends the process with
    the shell's code for SIGINT, 130, and nothing printed, as one after does. A SIGTERM before the command
    sets its own handler (`optimize`, from its first line) ends it with 143, the code `optimize` promises,
    as the default action would, but without the process being killed by the signal (-15 to its parent)."""
    import signal

    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(128 + signum))
    try:
        from hpotool.cli import main as run_cli
    except KeyboardInterrupt:
        os._exit(130)  # not sys.exit: under python -m, CPython would end the process by SIGINT (see run_cli)
    run_cli()
