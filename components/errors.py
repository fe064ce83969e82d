"""The one family of errors emoreview raises on purpose.

Every error a user can cause (a bad file, an unknown emotion, a missing index, a server that
is not running...) derives from :class:`EmoreviewError`. The edges map the family, and only
the family, to what a person sees: the command line prints one line and exits with code 2,
a served endpoint answers a 4xx JSON body. Anything else is a bug and keeps its traceback.
Dependency-free, so the command line can name it without importing the stack.
"""

from __future__ import annotations

import errno
from typing import ClassVar


class EmoreviewError(Exception):
    """Base of emoreview's own errors.

    ``user_error``: the input (data, settings, request, state of the workspace) is wrong and
    the message says what to do: reported in one line, exit code 2 on the command line.
    ``http_status``: the status a served endpoint answers with (always a 4xx).
    """

    user_error: ClassVar[bool] = True
    http_status: int = 400


def is_user_error(error: BaseException) -> bool:
    """Whether ``error`` is a user's mistake to report in one line (not a bug)."""
    return isinstance(error, EmoreviewError) and error.user_error


DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def disk_full_error(error: BaseException) -> OSError | None:
    """The "no space left" / "file too large" / "quota" error behind ``error`` (itself or any
    exception it was raised from), if there is one: the machine's state, not a bug."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return current
        current = current.__cause__ or current.__context__
    return None
