"""The one exception users are meant to see."""


class HpoError(Exception):
    """A mistake the user can fix: bad config, unknown name, missing study.

    The CLI prints its message on one line and exits with code 2.
    """
