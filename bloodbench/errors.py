"""One exception type for every user-facing failure.

The CLI turns a :class:`BloodbenchError` into a one-line ``error: ...`` message and a
non-zero exit, with no traceback; everything else is a bug and keeps its traceback.
"""


class BloodbenchError(Exception):
    """A problem with the user's input or environment, with a hint on how to fix it."""

    exit_code = 2


def warn(message: str) -> None:
    """One ``warning: ...`` line on stderr: something was skipped or set aside, and the run goes on."""
    import sys

    print(f"warning: {message}", file=sys.stderr)
