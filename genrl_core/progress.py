"""Progress of long loops (training, dataset making): a tqdm bar on a terminal, plain whole lines otherwise.

progress_bar() gives a tqdm bar when the stream (stderr) is a terminal and a `Lines` object when it is not (a log
file, a pipe, a batch job): the same calls (update, set_postfix_str, iteration, close, with-blocks), printed as
lines like `step 12000/50000 (24%) 180 steps/s score 12.3 eta 3m31s` at most every LINE_INTERVAL_S seconds, plus
one when the loop starts and one when it ends.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Any, Iterable, Iterator, TextIO

from tqdm.auto import tqdm

LINE_INTERVAL_S = 30.0  # seconds between plain progress lines (not a terminal)


def duration(seconds: float) -> str:
    """A duration in words for a log line: 45s, 3m31s, 2h05m."""
    s = int(round(max(seconds, 0.0)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _rate(rate: float) -> str:
    return f"{rate:.0f}" if rate >= 10 else f"{rate:.2g}"


class Lines:
    """Progress as plain lines (no bar, no carriage returns): one at the start, then at most every `interval`
    seconds, and one at the end; `desc n/total (pct%) rate unit/s postfix eta T` (`... took T` at the end)."""

    def __init__(self, iterable: Iterable | None = None, total: int | None = None, desc: str = "",
                 unit: str = "steps", initial: int = 0, file: TextIO | None = None, interval: float | None = None):
        self.iterable, self.desc, self.unit, self.initial, self.n = iterable, desc, unit, initial, initial
        self.total = len(iterable) if total is None and hasattr(iterable, "__len__") else total
        self.file, self.postfix = file or sys.stderr, ""
        self.interval = LINE_INTERVAL_S if interval is None else interval
        self.start = self.last = time.monotonic()
        self.closed = False
        self._print()

    def line(self, final: bool = False) -> str:
        """The progress line now."""
        elapsed = time.monotonic() - self.start
        out = self.desc + " " if self.desc else ""
        out += f"{self.n}/{self.total} ({100 * self.n / max(self.total, 1):.0f}%)" if self.total else f"{self.n}"
        rate = (self.n - self.initial) / elapsed if elapsed > 0 and self.n > self.initial else None
        out += f" {_rate(rate)} {self.unit}/s" if rate else ""
        out += f" {self.postfix}" if self.postfix else ""
        if final:
            return out + f" took {duration(elapsed)}"
        return out + (f" eta {duration((self.total - self.n) / rate)}" if rate and self.total else "")

    def _print(self, final: bool = False) -> None:
        self.file.write(self.line(final) + "\n")
        self.file.flush()
        self.last = time.monotonic()

    def update(self, n: int = 1) -> None:
        """Advance by n; prints a line when `interval` seconds have passed since the last."""
        self.n += n
        if time.monotonic() - self.last >= self.interval:
            self._print()

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """Text shown after the rate (e.g. the last evaluation's score)."""
        self.postfix = s

    def close(self) -> None:
        """The final line (once)."""
        if not self.closed:
            self.closed = True
            self._print(final=True)

    def external_write_mode(self) -> contextlib.AbstractContextManager:
        """What tqdm needs around other output; plain lines need nothing."""
        return contextlib.nullcontext()

    def __iter__(self) -> Iterator:
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __enter__(self) -> "Lines":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress_bar(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", unit: str = "steps",
                 initial: int = 0, enabled: bool = True, file: TextIO | None = None) -> "tqdm | Lines":
    """A tqdm bar when `file` (default stderr) is a terminal, plain `Lines` when it is not, a disabled (silent) tqdm
    when not `enabled`."""
    file = file or sys.stderr
    if enabled and not (hasattr(file, "isatty") and file.isatty()):
        return Lines(iterable, total=total, desc=desc, unit=unit, initial=initial, file=file)
    width = _width(file)  # a terminal that reports no size (some ptys) would show no bar: 100 x 20 then
    return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, file=file, disable=not enabled,
                dynamic_ncols=width != 0, ncols=100 if width == 0 else None, nrows=20 if width == 0 else None)


def _width(file: TextIO) -> int | None:
    """The columns of the terminal behind `file`: 0 when it reports none, None when it is not one."""
    try:
        return os.get_terminal_size(file.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return None
