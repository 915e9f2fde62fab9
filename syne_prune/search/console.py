"""What a search shows on the console: its progress bars and syne-prune's own messages.

Other libraries speak up during a search: gpytorch warns ``NumericalWarning: Very small noise values
detected`` on nearly every EHVI suggestion, Syne Tune logs GPU counts, transformers draws a progress
bar whenever it loads weights. While a search runs, ``third_party_output_to`` sends warnings (syne-prune
raises none of its own; its messages are printed) and the log records of loggers outside ``syne_prune``
that would reach a console handler to the search's log file (``OUTPUT/search.log``), and turns
transformers' progress bars off.
"""
from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from transformers.utils import logging as transformers_logging

LOG_FILE = "search.log"
_OURS = "syne_prune"


class _ToLogFile(logging.Filter):
    """On a console handler: passes syne-prune's records, writes every other record to ``handler``
    (once, however many console handlers it reaches) and drops it from the console."""

    def __init__(self, handler: logging.Handler) -> None:
        super().__init__()
        self.handler = handler
        self._last: logging.LogRecord | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == _OURS or record.name.startswith(_OURS + "."):
            return True
        if record is not self._last:
            self._last = record
            self.handler.handle(record)
        return False


def _console_handlers() -> list[logging.Handler]:
    """Stream handlers that are not files (stderr, stdout or the like), on every logger that exists now,
    plus logging's last resort (it prints when a record finds no handler)."""
    loggers = [logging.getLogger()] + [item for item in logging.Logger.manager.loggerDict.values() if isinstance(item, logging.Logger)]
    handlers = {id(h): h for logger in loggers for h in logger.handlers
                if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)}
    if logging.lastResort is not None:
        handlers[id(logging.lastResort)] = logging.lastResort
    return list(handlers.values())


class _LogFileHandler(logging.FileHandler):
    """A log file that drops a record it cannot write (a full disk) instead of printing a traceback: the
    search's own next write names the failure in one line."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        pass


@contextmanager
def third_party_output_to(path: str | Path) -> Iterator[None]:
    """While active: warnings and other libraries' log records go to ``path`` (appended to, so a resumed
    search adds to it), not to the console; transformers' progress bars are off. Everything is restored
    on exit."""
    handler = _LogFileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    to_log = _ToLogFile(handler)
    consoles = _console_handlers()
    original_showwarning = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None) -> None:
        text = warnings.formatwarning(message, category, filename, lineno, line).rstrip()
        handler.handle(logging.makeLogRecord({"name": "py.warnings", "levelno": logging.WARNING, "levelname": "WARNING", "msg": text}))

    bars = transformers_logging.is_progress_bar_enabled()
    for console in consoles:
        console.addFilter(to_log)
    warnings.showwarning = showwarning
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        warnings.showwarning = original_showwarning
        for console in consoles:
            console.removeFilter(to_log)
        if bars:
            transformers_logging.enable_progress_bar()
        handler.close()
