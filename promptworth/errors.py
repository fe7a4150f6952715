"""User errors: every mistake a user can fix (a bad flag, file, row, field, parameter or store)
raises a PromptworthError. The CLI prints those, and only those, as one line with exit status 2;
any other exception is a bug in promptworth and keeps its traceback."""

from __future__ import annotations


class PromptworthError(Exception):
    """A problem with what the user gave: the message names the file, row, field or flag and
    says what to do."""


def did_you_mean(word: str, choices) -> str:
    """'; did you mean X?' for the closest of `choices`, or '' when none is close."""
    import difflib

    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


QUOTE_LIMIT = 200  # characters of a user's value an error message shows


def quoted(value) -> str:
    """`value` as an error message shows it: its repr, cut to QUOTE_LIMIT characters, so a
    field holding megabytes still makes a one-line error (reprlib bounds the work too)."""
    import reprlib

    shorter = reprlib.Repr()
    shorter.maxstring = shorter.maxother = QUOTE_LIMIT
    shown = shorter.repr(value)
    return shown if len(shown) <= QUOTE_LIMIT else f"{shown[: QUOTE_LIMIT - 3]}..."
