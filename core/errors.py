"""One exception type for problems a user can fix; the CLIs print its message as one line."""

from __future__ import annotations


class UserFacingError(Exception):
    """Bad input: the message names the file or row and says what to do."""


class DataError(UserFacingError):
    """The data folder does not match the Kaggle layout."""
