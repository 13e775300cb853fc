"""The options of a batch run and what it reports, shared by both engines."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from clinicode.batch.io import FORMATS_IN, FORMATS_OUT, detect_format
from clinicode.batch.rows import DEFAULT_MAX_CHARS
from clinicode.errors import InputError
from clinicode.schema import SYSTEMS


@dataclass
class BatchOptions:
    """One batch run: where notes come from and go, and how the engine codes them."""

    input: Path
    output: Path
    errors: Path | None = None
    input_format: str | None = None
    output_format: str | None = None
    id_column: str = "id"
    text_column: str = "text"
    model: Path | None = None
    kb: Path | None = None
    setting: str = "outpatient"
    systems: tuple[str, ...] | None = None
    workers: int = 1
    chunk: int = 32  # notes per engine call (per worker)
    rows_per_file: int = 5000  # Parquet part files
    max_chars: int = DEFAULT_MAX_CHARS
    progress: bool | None = None  # None: when stderr is a terminal
    # The paths as given (``s3a://bucket/x``: pathlib would fold the "//"), for Spark's readers.
    input_uri: str = ""
    output_uri: str = ""
    errors_uri: str = ""

    def checked(self) -> BatchOptions:
        """These options with formats resolved; :class:`InputError` for a bad one."""
        self.input_uri = self.input_uri or str(self.input)
        self.output_uri = self.output_uri or str(self.output)
        self.errors_uri = self.errors_uri or (str(self.errors) if self.errors else "")
        self.input_format = detect_format(self.input, self.input_format, FORMATS_IN, "input")
        self.output_format = detect_format(self.output, self.output_format, FORMATS_OUT, "output")
        if self.setting not in ("inpatient", "outpatient"):
            raise InputError(f"--setting must be inpatient or outpatient, not {self.setting!r}")
        for s in self.systems or ():
            if s not in SYSTEMS:
                raise InputError(f"unknown code system {s!r}; choose from {', '.join(SYSTEMS)}")
        if self.workers < 1:
            raise InputError("--workers must be at least 1")
        if self.chunk < 1 or self.rows_per_file < 1 or self.max_chars < 1:
            raise InputError("--chunk, --rows-per-file and --max-chars must be at least 1")
        if "parquet" in (self.input_format, self.output_format) and not _has("pyarrow"):
            raise InputError("Parquet needs pyarrow: pip install 'clinicode[spark]'")
        if self.input.resolve() == self.output.resolve():
            raise InputError("the output must not be the input")
        return self

    @property
    def errors_path(self) -> Path:
        """The errors file (JSON lines): ``--errors``, else beside the output."""
        if self.errors is not None:
            return self.errors
        return self.output.with_name(self.output.stem + ".errors.jsonl")


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@dataclass
class BatchReport:
    """What a run did; ``skipped`` notes were finished by an earlier run."""

    engine: str
    read: int = 0
    coded: int = 0
    failed: int = 0
    bad: int = 0
    skipped: int = 0
    seconds: float = 0.0
    extra: dict[str, int | float | str] = field(default_factory=dict)

    @property
    def notes_per_s(self) -> float:
        return (self.coded + self.failed) / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, int | float | str]:
        return {
            "engine": self.engine,
            "read": self.read,
            "coded": self.coded,
            "failed": self.failed,
            "bad_rows": self.bad,
            "skipped_done": self.skipped,
            "seconds": round(self.seconds, 2),
            "notes_per_s": round(self.notes_per_s, 2),
            **self.extra,
        }
