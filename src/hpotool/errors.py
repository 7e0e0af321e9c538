"""The one exception users are meant to see, and `RunCheckError`, a run that cannot train, which the
checks before trial 0 turn into one; `chain`, an error and those it was raised from."""

from collections.abc import Iterator


class HpoError(Exception):
    """A mistake the user can fix: bad config, unknown name, missing study.

    The CLI prints its message on one line and exits with code 2.
    """


def unsuppress_context(exc: BaseException) -> None:
    """Let `--debug`'s traceback show the exceptions `exc` was raised while handling. hpotool turns a user's
    error into its one line with `raise HpoError(...) from None`, which hid the error itself: `hpotool --debug
    optimize` on a model whose forward() raised showed hpotool's frames alone, never the user's (a worker's
    too: `worker_process.worker_main` sends its traceback so)."""
    for link in chain(exc):
        link.__suppress_context__ = False


def chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then the exception it was raised from or while handling (`__cause__`, else `__context__`), and
    so on, each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


class RunCheckError(ValueError):
    """A run that cannot train, found by `dry_run`: `where` is the config section or the step that failed."""

    def __init__(self, where: str, detail: str) -> None:
        super().__init__(f"{where}: {detail}")
        self.where = where
        self.detail = detail
