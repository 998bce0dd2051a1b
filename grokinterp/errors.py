"""Errors that the CLI turns into a one-line message and exit code 2 (never a traceback)."""


class UsageError(Exception):
    """A user mistake: bad flag values, a directory that holds another run, a bad file."""


class Interrupted(KeyboardInterrupt):
    """A Ctrl-C that a command caught to keep its work, with the one line that says what was
    kept and how to go on."""
