"""The two consoles (results on stdout, notes and errors on stderr), made on first use so `--help` never
imports rich, and the helpers every command prints with."""

from __future__ import annotations

import functools
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table


@functools.cache
def out_console() -> Console:
    """The rich console for results (stdout), made on first use so `--help` never imports rich."""
    from rich.console import Console

    width, height = _dumb_terminal_size()
    return Console(width=width, height=height)


@functools.cache
def err_console() -> Console:
    """The rich console for progress, notes and errors (stderr)."""
    from rich.console import Console

    width, height = _dumb_terminal_size()
    return Console(stderr=True, width=width, height=height)


def _dumb_terminal_size() -> tuple[int | None, int | None]:
    """COLUMNS (and LINES) as the consoles' size on a dumb terminal (TERM=dumb: Emacs's shell, which sets
    COLUMNS to its window's width): rich takes one for 80 columns unless given both sizes, and printed
    every table 80 wide there, COLUMNS=160 or not. Nothing elsewhere: rich reads COLUMNS itself."""
    columns, lines = os.environ.get("COLUMNS", ""), os.environ.get("LINES", "")
    if (
        os.environ.get("TERM", "").lower() not in ("dumb", "unknown")
        or not columns.isdigit()
        or not int(columns)
    ):
        return None, None
    return int(columns), int(lines) if lines.isdigit() and int(lines) else 25


def print_note(text: str) -> None:
    """`note: text` on stderr, one line however narrow the terminal (the terminal wraps it, rich does not
    break it): a note's command (`hpotool trials ... --state fail`) copies whole."""
    err_console().print(f"[yellow]note:[/yellow] {escape(text)}", soft_wrap=True)


def say(text: str) -> None:
    """`text` on stderr as one line (as `print_note`, without its label): what a command did, e.g. the study
    `optimize` created and where (`new study 'NAME' in /abs/studies/NAME.db`)."""
    err_console().print(escape(text), soft_wrap=True)


def escape(text: str) -> str:
    """Escape rich markup in `text` (rich.markup.escape, imported on first use)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def plain_table(title: str, **kwargs: Any) -> Table:
    """A left-titled rich table whose title, headers and cells are plain text: study, parameter and
    metric names come from users and plain Optuna studies, and "[x]" in them is not rich markup. A cell
    too wide for its column folds; none is cut short. A title longer than the table prints whole above it,
    folded only where the terminal is narrower than it."""
    from rich.segment import Segment
    from rich.table import Table
    from rich.text import Text

    class PlainTable(Table):
        def __rich_console__(self, console: Any, options: Any) -> Any:
            # Rich folds the title to the table's width: a long study name over a narrow table ("study
            # a_very_long_s" over "tudy_name_for" ...) took six lines where one fitted the terminal.
            title = self.title
            if not isinstance(title, Text) or not title.plain:
                yield from super().__rich_console__(console, options)
                return
            self.title = None
            try:
                lines = console.render_lines(self, options, pad=False)
            finally:
                self.title = title
            width = max((Segment.get_line_length(line) for line in lines), default=0)
            width = max(width, min(title.cell_len, options.max_width))
            yield from console.render(title, options.update(width=width, justify=self.title_justify))
            for line in lines:
                yield from line
                yield Segment.line()

        def add_column(self, header: Any = "", *args: Any, **kw: Any) -> None:
            # A word wider than its column (a path, a storage URL, a command) folds onto the next line
            # rather than ending in "…": at 80 columns export-best cut the best_run_<trial>.yaml it names.
            kw.setdefault("overflow", "fold")
            super().add_column(Text(header) if isinstance(header, str) else header, *args, **kw)

        def add_row(self, *cells: Any, **kw: Any) -> None:
            super().add_row(*(Text(c) if isinstance(c, str) else c for c in cells), **kw)

    return PlainTable(title=Text(title), title_justify="left", **kwargs)


def shown_url(url: str) -> str:
    """A storage URL as printed: its password as ***."""
    from hpotool.storage_url import shown_url as shown

    return shown(url)


def print_keyed(title: str, rows: list[tuple[str, str]], whole: str, sep: str = ": ") -> None:
    """A table of `rows`, each a key and its value, with every key whole ("optimizer.weight_dec" over "ay" on
    a narrow terminal); where the value of the row keyed `whole` (a path, a URL) would fold, that row goes
    under the table as one line, `key: value` (`sep` between), whole to copy. Rich's own layout where
    neither fits."""

    def table_of(shown: list[tuple[str, str]], whole_keys: bool = True) -> Table:
        table = plain_table(title, show_header=False)
        table.add_column(style="bold", no_wrap=whole_keys)
        table.add_column()
        for key, value in shown:
            table.add_row(key, value)
        return table

    table, below = table_of(rows), None
    if not fits(table):
        narrower = table_of([r for r in rows if r[0] != whole])
        if fits(narrower):
            table, below = narrower, next(r for r in rows if r[0] == whole)
        else:
            table = table_of(rows, whole_keys=False)
    out_console().print(table)
    if below is not None:
        out_console().print(escape(f"{below[0]}{sep}{below[1]}"), soft_wrap=True)


def print_json(data: Any) -> None:
    from hpotool.strict_json import dump_json

    sys.stdout.write(dump_json(data))


def fits(table: Table) -> bool:
    """Whether `table` prints within the terminal without folding a word or cutting a no_wrap cell, and if
    so, its columns' widths set to do so.

    Rich's own layout narrows the widest column first, below its longest word however much room the
    others leave ("optimizer.lr=0.0" over "0443" beside a whole "Pareto front" note): each column here
    gets its longest word (a no_wrap column, its longest cell), and the room left goes to the columns
    that need the least more to print on one line, so short cells stay whole and the widest wraps.
    """
    from rich.measure import Measurement

    # Measurement.get clamps to the terminal's width
    unbounded = out_console().options.update_width(1_000_000)
    least: list[int] = []
    most: list[int] = []
    for column in table.columns:
        cells = [Measurement.get(out_console(), unbounded, cell) for cell in (column.header, *column.cells)]
        most.append(max(m.maximum for m in cells))
        least.append(most[-1] if column.no_wrap else max(m.minimum for m in cells))
    room = (
        out_console().width - (len(table.columns) + 1) - 2 * len(table.columns)
    )  # borders, a space each side
    if sum(least) > room:
        return False
    if sum(most) > room:  # else rich prints every column at its widest
        widths = list(least)
        left = room - sum(least)
        for i in sorted(range(len(widths)), key=lambda i: most[i] - least[i]):
            widths[i] += min(most[i] - least[i], left)
            left -= widths[i] - least[i]
        for column, width in zip(table.columns, widths, strict=True):
            column.width = width
    return True
