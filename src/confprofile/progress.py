"""Progress that a log file can read: a live rich bar on a terminal, else a line at least every 30 s."""

from __future__ import annotations

import sys
import time


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class ProgressLog:
    """`with ProgressLog("[profiles]", total, unit="users") as progress: progress.advance(n)`.

    Off a terminal each line reads `[profiles] 20000/100000 users · 512.3/s · ETA 2m36s`; `total` may be
    None when it is not known in advance (a streamed file), and the ETA is then left out."""

    def __init__(self, description: str, total: int | None = None, unit: str = "items", every_s: float = 30.0, stream=None):
        self.description, self.total, self.unit, self.every_s = description, total, unit, every_s
        self.stream = stream or sys.stderr
        self.done = 0
        self._bar = None

    def __enter__(self) -> "ProgressLog":
        self.started = self._last = time.monotonic()
        if self.stream.isatty():
            from rich.progress import Progress

            self._bar = Progress(transient=False)
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=self.total)
        return self

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(self._task, advance=n)
        elif time.monotonic() - self._last >= self.every_s:
            self._line()

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        text = f"{self.description} {self.done}" + (f"/{self.total}" if self.total else "") + f" {self.unit} · {rate:.1f}/s"
        if self.total and rate > 0:
            text += f" · ETA {_duration((self.total - self.done) / rate)}"
        return text

    def _line(self) -> None:
        self._last = time.monotonic()
        print(self.line(), file=self.stream, flush=True)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()
        else:
            self._line()
