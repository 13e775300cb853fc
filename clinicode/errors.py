"""Errors a user can act on. The CLI turns them into a message and exit code 2."""


class ClinicodeError(Exception):
    """Base class for expected, user-facing errors (bad input, missing files, bad packs)."""


class InputError(ClinicodeError):
    """The user gave a bad argument, file or note."""
