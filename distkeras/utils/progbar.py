"""``utils.Progbar``: the progress bar for hand-written loops, as ``keras.utils.Progbar``.

Values passed to :meth:`Progbar.update` are averaged over the steps they cover, except the
names in ``stateful_metrics`` (shown as given); ``stateless_metrics`` inverts the default.
"""

from __future__ import annotations

import sys
import time

from distkeras.callbacks.progbar import _format_time, _format_value
from distkeras.utils.io_utils import is_interactive_logging_enabled, print_msg


class Progbar:
    """A progress bar for ``target`` steps (None: unknown).

    Example:
        >>> bar = Progbar(3, verbose=0)
        >>> for step in range(3):
        ...     bar.update(step + 1, values=[("loss", 1.0 / (step + 1))])
    """

    def __init__(
        self,
        target,
        width: int = 20,
        verbose: int = 1,
        interval: float = 0.05,
        stateful_metrics=None,
        stateless_metrics=None,
        unit_name: str = "step",
    ):
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ValueError(
                "Only one of `stateful_metrics` or `stateless_metrics` can be provided: the "
                "first lists the names shown as given (the rest are averaged), the second the "
                "names averaged (the rest are shown as given)."
            )
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.unit_name = unit_name
        self.stateful_metrics = set(stateful_metrics or ()) if stateless_metrics is None else None
        self.stateless_metrics = set(stateless_metrics) if stateless_metrics is not None else None
        self._dynamic_display = hasattr(sys.stdout, "isatty") and sys.stdout.isatty()
        self._seen_so_far = 0
        self._values: dict[str, list] = {}
        self._values_order: list[str] = []
        self._start = time.time()
        self._last_update = 0.0
        self._prev_width = 0

    def _averaged(self, name: str) -> bool:
        if self.stateful_metrics is not None:
            return name not in self.stateful_metrics
        return name in self.stateless_metrics

    def update(self, current: int, values=None, finalize: bool | None = None) -> None:
        """Moves the bar to step ``current``; ``values`` is a list of ``(name, value)``."""
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        for name, value in values or []:
            if name not in self._values_order:
                self._values_order.append(name)
            if not self._averaged(name) or finalize:
                self._values[name] = [value, 1]
                continue
            weight = max(current - self._seen_so_far, 1)
            total = self._values.setdefault(name, [0.0, 0])
            total[0] += value * weight
            total[1] += weight
        self._seen_so_far = current
        now = time.time()
        if self.verbose == 1:
            if now - self._last_update < self.interval and not finalize:
                return
            self._write(self._bar_line(current, now, finalize), finalize)
        elif self.verbose == 2 and finalize:
            elapsed = _format_time(now - self._start)
            self._write(f"{current}/{self.target} - {elapsed}{self._values_text()}", True)
        self._last_update = now

    def add(self, n: int, values=None) -> None:
        """Advances the bar by ``n`` steps."""
        self.update(self._seen_so_far + n, values)

    def _values_text(self) -> str:
        parts = []
        for name in self._values_order:
            total, count = self._values[name]
            parts.append(f" - {name}: {_format_value(total / max(count, 1))}")
        return "".join(parts)

    def _bar_line(self, current: int, now: float, finalize: bool) -> str:
        elapsed = now - self._start
        if self.target is not None:
            digits = len(str(self.target))
            filled = int(self.width * min(current, self.target) / max(self.target, 1))
            arrow = ">" if current < self.target and filled < self.width else ""
            dots = "." * (self.width - filled - len(arrow))
            bar = f"{current:{digits}d}/{self.target} [{'=' * filled}{arrow}{dots}]"
        else:
            bar = f"{current:7d}/Unknown"
        per_unit = elapsed / current if current else 0.0
        if finalize:
            timing = f" {_format_time(elapsed)} {per_unit * 1e3:.0f}ms/{self.unit_name}"
        elif self.target is not None:
            timing = f" - ETA: {_format_time(per_unit * (self.target - current))}"
        else:
            timing = f" {_format_time(elapsed)}"
        return bar + timing + self._values_text()

    def _write(self, line: str, finalize: bool) -> None:
        if not is_interactive_logging_enabled():
            if finalize:
                print_msg(line)
            return
        if self._dynamic_display:
            padding = " " * max(self._prev_width - len(line), 0)
            sys.stdout.write("\r" + line + padding + ("\n" if finalize else ""))
        elif finalize:
            sys.stdout.write(line + "\n")
        self._prev_width = len(line)
        sys.stdout.flush()
