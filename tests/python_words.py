"""Python's own words, which a line of hpotool passes on (an error raised in the user's or torch's code), as
each Python before 3.11 puts them: the tests hold 3.11's."""

from __future__ import annotations

import sys

# `1 % 0` said "integer division or modulo by zero" before 3.11.
OLDER_PYTHON_WORDS = {(3, 10): {"integer modulo by zero": "integer division or modulo by zero"}}


def as_this_python_words(message: str) -> str:
    """`message`, 3.11's words in it put as the running Python puts them."""
    for old, new in OLDER_PYTHON_WORDS.get(sys.version_info[:2], {}).items():
        message = message.replace(old, new)
    return message
