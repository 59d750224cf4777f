"""One exception type for problems a user can fix; the CLIs print its message as one line."""

from __future__ import annotations

import errno
from pathlib import Path

FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
DENIED = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


class UserFacingError(Exception):
    """Bad input: the message names the file or row and says what to do."""


class DataError(UserFacingError):
    """The data folder does not match the Kaggle layout."""


def disk_failure(err: OSError) -> str | None:
    """One line for a disk that refused a file (full, over quota, read-only, no permission), naming its
    folder and the fix; None for any other OSError (a bug, which keeps its traceback)."""
    if err.errno not in FULL | DENIED:
        return None
    path = Path(err.filename) if err.filename else None
    where = f"{path}: " if path else ""
    folder = path.parent if path else "the output folder"
    if err.errno in FULL:
        return (f"{where}{err.strerror}; free space in {folder} (or its quota), or set WORK= to a disk with room, "
                "then rerun: finished steps are kept")
    return (f"{where}{err.strerror}; make {folder} writable (and readable) for this user, or set WORK= to a "
            "folder you can write")
