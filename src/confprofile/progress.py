"""Progress that a log file can read: a live rich bar on a terminal, else a line at least every 30 s."""

from __future__ import annotations

import sys
import time


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class ProgressLog:
    """`with ProgressLog("[profiles]", total, unit="users") as progress: progress.advance(n, failed=0)`.

    Off a terminal each line reads `[label] minilm 2000/14000 requests · 51.3/s · ETA 3m53s · cached 0 ·
    failed 0`; `total` may be None when it is not known in advance (a streamed file), and the ETA is
    then left out. Keyword fields of `advance` are shown as they were last given."""

    def __init__(self, description: str, total: int | None = None, unit: str = "items", every_s: float = 30.0,
                 stream=None, enabled: bool = True):
        self.description, self.total, self.unit, self.every_s, self.enabled = description, total, unit, every_s, enabled
        self.stream = stream or sys.stderr
        self.done, self.fields = 0, {}
        self._bar = None

    def __enter__(self) -> "ProgressLog":
        self.started = self._last = time.monotonic()
        if self.enabled and self.stream.isatty():
            from rich.progress import Progress

            self._bar = Progress(transient=False)
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=self.total)
        return self

    def describe(self, description: str) -> None:
        self.description = description
        if self._bar is not None:
            self._bar.update(self._task, description=description)

    def advance(self, n: int = 1, **fields) -> None:
        self.done += n
        self.fields.update(fields)
        if self._bar is not None:
            self._bar.update(self._task, advance=n, description=" · ".join([self.description, *self._field_texts()]))
        elif self.enabled and time.monotonic() - self._last >= self.every_s:
            self._line()

    def _field_texts(self) -> list[str]:
        return [f"{name} {value}" for name, value in self.fields.items()]

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        text = f"{self.description} {self.done}" + (f"/{self.total}" if self.total else "") + f" {self.unit} · {rate:.1f}/s"
        if self.total and rate > 0:
            text += f" · ETA {_duration((self.total - self.done) / rate)}"
        return " · ".join([text, *self._field_texts()])

    def _line(self) -> None:
        self._last = time.monotonic()
        print(self.line(), file=self.stream, flush=True)

    def __exit__(self, exc_type, *_) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif self.enabled and exc_type is None:  # an error reports itself, in one line
            self._line()
