"""User-facing errors. The CLI turns an `InputError` into one line and exit code 2."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad user input: names the file, the line (1-based) and the field at fault."""

    def __init__(self, path: str | Path | None, line: int | None, field: str | None, message: str):
        self.path, self.line, self.field, self.message = path, line, field, message
        super().__init__(self.one_line())

    @classmethod
    def from_validation(cls, path, exc, prefix: str = "") -> "InputError":
        """The first error of a pydantic ValidationError, its location as the field."""
        err = exc.errors()[0]
        field = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        return cls(path, None, field, err["msg"])

    def one_line(self) -> str:
        where = str(self.path) if self.path is not None else "<input>"
        if self.line is not None:
            where += f":{self.line}"
        if self.field:
            where += f": field '{self.field}'"
        return f"{where}: {self.message}"


class MissingExtraError(RuntimeError):
    """An optional dependency (vllm, ray, ...) is not installed."""

    def __init__(self, package: str, extra: str, purpose: str):
        super().__init__(
            f"{purpose} needs the optional package '{package}', which is not installed. "
            f"Install it with: pip install 'confprofile[{extra}]'"
        )
