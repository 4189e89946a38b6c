"""Where progress output goes: stdout (interactive, the default) or Python logging.

``disable_interactive_logging()`` suits batch jobs and servers: progress bars stop redrawing
and each finished line goes to the ``distkeras`` logger instead, as Keras sends its lines to
absl logging.
"""

from __future__ import annotations

import logging
import sys

_INTERACTIVE = True
_LOGGER = logging.getLogger("distkeras")


def enable_interactive_logging() -> None:
    """Progress bars and messages go to stdout (the default)."""
    global _INTERACTIVE
    _INTERACTIVE = True


def disable_interactive_logging() -> None:
    """Progress lines go to the ``distkeras`` logger at INFO level, one finished line each."""
    global _INTERACTIVE
    _INTERACTIVE = False


def is_interactive_logging_enabled() -> bool:
    return _INTERACTIVE


def print_msg(message: str, line_break: bool = True, stream=None) -> None:
    """Writes ``message`` to ``stream`` (stdout) when interactive, else logs it."""
    if not _INTERACTIVE:
        text = message.replace("\r", "").rstrip("\n")
        if text:
            _LOGGER.info(text)
        return
    out = stream or sys.stdout
    out.write(message + ("\n" if line_break else ""))
    out.flush()
