"""How far `hpotool optimize` got, and what it says when a signal stops it outside the trials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hpotool.cli.terminal import err_console, shown_url

if TYPE_CHECKING:
    from hpotool.summary import StudySummary


@dataclass
class Outcome:
    """How far `optimize` got: its summary once the trials have ended, and whether it writes the report."""

    summary: StudySummary | None = None
    writing_report: bool = False
    # The storage it is opening (it may have written its file and folder, or created the study), once the
    # configs are checked; until then nothing was written.
    opening: str | None = None
    opened: bool = False  # the study exists, and no trial has ended yet


def say_interrupted(outcome: Outcome) -> None:
    """What a signal outside the trials stopped (the trials' own interrupt is in the summary)."""
    from shlex import quote

    summary = outcome.summary
    if summary is None and outcome.opened:
        err_console().print(
            "interrupted: no trial was running; run the same command to resume", soft_wrap=True
        )
    elif summary is None and outcome.opening is not None:
        err_console().print(
            f"interrupted while opening the study in {outcome.opening}, before any trial ran; run the same "
            f"command to go on",
            soft_wrap=True,
        )
    elif summary is None:  # importing torch, reading the configs, checking them
        err_console().print("interrupted before the study started; nothing was written", soft_wrap=True)
    elif outcome.writing_report:
        err_console().print(
            f"interrupted: the report was not written; hpotool report --study-name {quote(summary.study_name)} "
            f"--storage {quote(shown_url(summary.storage))} writes it",
            soft_wrap=True,
        )
