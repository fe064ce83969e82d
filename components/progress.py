"""Progress a person can read: a live tqdm bar on a terminal; in a log file or CI (stderr is
not a terminal), one log line when a stage ends instead of hundreds of carriage-return
frames."""

from __future__ import annotations

import io
import logging
import sys
from typing import Any

from tqdm.auto import tqdm

log = logging.getLogger("emoreview.progress")


def interactive() -> bool:
    """Whether progress goes to a terminal (live bars) or to a log (lines)."""
    return sys.stderr.isatty()


class Progress(tqdm):
    """``tqdm`` with ``enabled`` instead of ``disable``. Without a terminal the bar is drawn
    nowhere and, when ``log_line`` is true, its outcome is logged once on close: ``<desc>:
    <n> <unit> in <s> s (<postfix>)``. A stage that logs its own line (a training epoch)
    passes ``log_line=False``."""

    def __init__(
        self, iterable: Any = None, *, enabled: bool = True, log_line: bool = True, **kwargs: Any
    ) -> None:
        self._log_on_close = enabled and log_line and not interactive()
        if enabled and not interactive():
            kwargs.update(file=io.StringIO(), mininterval=float("inf"))
        super().__init__(iterable, disable=not enabled, **kwargs)

    def close(self) -> None:
        if self._log_on_close:
            self._log_on_close = False
            postfix = f" ({self.postfix})" if self.postfix else ""
            log.info(
                "%s: %d %s in %.1f s%s",
                self.desc,
                self.n,
                self.unit,
                self.format_dict["elapsed"],
                postfix,
            )
        super().close()
