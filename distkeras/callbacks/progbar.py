"""Keras's progress bar (verbose=1) and one-line-per-epoch output (verbose=2).

Rendering is throttled: between renders a step costs one clock read, and metric values (a host
sync on GPU) are read only when a line is drawn.
"""

from __future__ import annotations

import sys
import time

from distkeras.callbacks.base import Callback
from distkeras.utils.io_utils import is_interactive_logging_enabled, print_msg

_BAR_WIDTH = 20


def _format_value(value) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.4e}"
    return f"{value:.4f}"


def _format_time(seconds: float) -> str:
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{int(seconds)}s"


def _format_per_step(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


class ProgbarLogger(Callback):
    """Prints training progress like Keras (added by ``fit`` when ``verbose`` > 0).

    Args:
        interval: minimum seconds between two renders of the bar.
    """

    def __init__(self, interval: float = 0.1, stream=None):
        super().__init__()
        self.interval = interval
        self.stream = stream
        self._dynamic = False

    def _out(self):
        return self.stream or sys.stdout

    def set_params(self, params):
        super().set_params(params)
        self.verbose = params.get("verbose", 1)
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")

    def on_train_begin(self, logs=None):
        out = self._out()
        # A redrawn bar needs a terminal; with interactive logging off, lines go to logging.
        self._dynamic = hasattr(out, "isatty") and out.isatty() and is_interactive_logging_enabled()

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.monotonic()
        self._last_render = 0.0
        self._seen = 0
        if self.verbose:
            self._write(f"Epoch {epoch + 1}/{self.epochs}\n")

    def on_train_batch_end(self, batch, logs=None):
        self._seen = batch + 1
        if self.verbose != 1 or not self._dynamic:
            return
        now = time.monotonic()
        if now - self._last_render < self.interval:
            return
        self._last_render = now
        self._render(batch + 1, logs, final=False)

    def on_epoch_end(self, epoch, logs=None):
        self._render(self._seen or self.target or 0, logs, final=True)

    def _render(self, current: int, logs, final: bool):
        elapsed = time.monotonic() - self._start
        target = self.target
        parts = []
        if self.verbose == 1:
            count = f"{current}/{target}" if target else f"{current}/Unknown"
            if target:
                filled = int(_BAR_WIDTH * min(current, target) / target)
                bar = "\u2501" * filled + " " * (_BAR_WIDTH - filled)
            else:
                bar = ""
            eta = ""
            if not final and target and current:
                eta = f"{_format_time(elapsed / current * (target - current))} "
            per_step = _format_per_step(elapsed / max(current, 1))
            head = f"{count} {bar} {eta if not final else _format_time(elapsed) + ' '}{per_step}"
            parts.append(head)
        else:
            parts.append(
                f"{current}/{target} - {_format_time(elapsed)} - "
                f"{_format_per_step(elapsed / max(current, 1))}"
            )
        for key, value in (logs or {}).items():
            parts.append(f"{key}: {_format_value(value)}")
        line = " - ".join(parts)
        if self.verbose == 1 and self._dynamic:
            self._write("\r" + line + ("\n" if final else ""))
        elif final:
            self._write(line + "\n")

    def _write(self, text: str) -> None:
        if not is_interactive_logging_enabled():
            print_msg(text)
            return
        out = self._out()
        out.write(text)
        out.flush()
