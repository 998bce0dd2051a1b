"""Errors that the CLI turns into a one-line message and exit code 2 (never a traceback)."""


class UsageError(Exception):
    """A user mistake: bad flag values, a directory that holds another run, a bad file."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with the one line that says where the interrupted work stands."""
