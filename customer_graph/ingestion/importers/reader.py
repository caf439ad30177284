"""Streaming readers for CSV and JSONL exports: one row at a time, in constant memory.

A reader never holds more than the row it yields (plus the file buffers). It knows how many bytes
of the file it has consumed, for a progress bar, and where each row starts, for the rejects file.
Gzip-compressed files (`.gz`) are read as they are; progress then counts compressed bytes.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from customer_graph.security import loads_bounded

# A CRM note or email body can be long; a single field larger than this is a broken file.
MAX_FIELD_BYTES = 16 * 1024 * 1024
DELIMITERS = (",", ";", "\t", "|")


class ImportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


class ReaderError(ValueError):
    """The file as a whole cannot be read (no header, unknown format, not text)."""


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One data row: `number` counts data rows from 1; `line` is the file line it starts on."""

    number: int
    line: int
    values: dict[str, Any]
    error: str | None = None  # set when the row itself could not be parsed
    fields: tuple[str, ...] | None = None  # the cells of a CSV row that does not fit the header


def detect_format(path: Path) -> ImportFormat:
    """The format named by the file's suffix (`.csv`, `.tsv`, `.jsonl`, `.ndjson`, `+ .gz`)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    suffix = suffixes[-1] if suffixes else ""
    if suffix in (".csv", ".tsv", ".txt"):
        return ImportFormat.CSV
    if suffix in (".jsonl", ".ndjson", ".json"):
        return ImportFormat.JSONL
    raise ReaderError(f"cannot tell the format of {path.name}; pass --format csv or jsonl")


class ExportReader:
    """Iterate the rows of a CSV (with a header row) or JSONL file.

    Use as a context manager; iterate once. `header` is known after the first row for CSV (JSONL
    rows carry their own keys).
    """

    def __init__(
        self,
        path: Path,
        fmt: ImportFormat | None = None,
        *,
        encoding: str = "utf-8-sig",
        delimiter: str | None = None,
    ) -> None:
        self.path = path
        self.format = fmt or detect_format(path)
        self.encoding = encoding
        self.delimiter = delimiter
        self.header: tuple[str, ...] | None = None
        self.total_bytes = path.stat().st_size
        self._raw: io.FileIO | None = None
        self._text: IO[str] | None = None

    def __enter__(self) -> Self:
        raw = io.FileIO(self.path, "r")
        self._raw = raw
        binary: IO[bytes] = io.BufferedReader(raw, buffer_size=256 * 1024)
        if self.path.suffix.lower() == ".gz":
            binary = gzip.GzipFile(fileobj=binary, mode="rb")  # type: ignore[assignment]
        self._text = io.TextIOWrapper(binary, encoding=self.encoding, newline="")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._text is not None:
            self._text.close()
        if self._raw is not None:
            self._raw.close()

    @property
    def bytes_read(self) -> int:
        """Bytes of the file consumed so far (ahead of the rows yielded by one buffer at most)."""
        if self._raw is None or self._raw.closed:
            return self.total_bytes
        return min(self._raw.tell(), self.total_bytes)

    def __iter__(self) -> Iterator[SourceRow]:
        if self._text is None:
            raise RuntimeError("use ExportReader as a context manager")
        try:
            if self.format is ImportFormat.CSV:
                yield from self._csv_rows(self._text)
            else:
                yield from self._jsonl_rows(self._text)
        except UnicodeDecodeError as e:
            raise ReaderError(
                f"{self.path.name} is not {self.encoding} text ({e.reason} at byte {e.start} "
                "of a block); pass --encoding"
            ) from e

    def _csv_rows(self, text: IO[str]) -> Iterator[SourceRow]:
        first = text.readline()
        header_line = 1
        while first and not first.strip():
            first = text.readline()
            header_line += 1
        if not first:
            raise ReaderError(f"{self.path.name} is empty: a CSV needs a header row")
        delimiter = self.delimiter or _sniff_delimiter(first)
        header = [h.strip() for h in next(csv.reader([first], delimiter=delimiter))]
        if not any(header):
            raise ReaderError(f"{self.path.name} has an empty header row")
        self.header = tuple(header)
        # The first column of a name wins when an export repeats a column name.
        positions: dict[str, int] = {}
        for i, name in enumerate(header):
            if name:
                positions.setdefault(name, i)
        columns = [(i, name) for name, i in positions.items()]
        width = len(header)
        csv.field_size_limit(MAX_FIELD_BYTES)
        reader = csv.reader(text, delimiter=delimiter)
        number = 0
        while True:
            line = header_line + reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                number += 1
                yield SourceRow(number, line, {}, f"unreadable CSV row: {e}")
                continue
            if not fields or not any(f.strip() for f in fields):
                continue
            number += 1
            if len(fields) != width:
                yield SourceRow(
                    number,
                    line,
                    dict(zip(header, fields, strict=False)),
                    f"row has {len(fields)} fields; the header has {width}",
                    tuple(fields),
                )
                continue
            yield SourceRow(number, line, {name: fields[i] for i, name in columns})

    def _jsonl_rows(self, text: IO[str]) -> Iterator[SourceRow]:
        number = 0
        for line_no, line in enumerate(text, start=1):
            if not line.strip():
                continue
            number += 1
            try:
                value = loads_bounded(line)  # depth-limited: a deep line is a reject, not a crash
            except json.JSONDecodeError as e:
                yield SourceRow(number, line_no, {}, f"invalid JSON: {e.msg} (column {e.colno})")
                continue
            if not isinstance(value, dict):
                yield SourceRow(number, line_no, {}, "line is not a JSON object")
                continue
            yield SourceRow(number, line_no, flatten(value))


def flatten(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects become dotted keys (`{"a": {"b": 1}}` -> `{"a.b": 1}`); lists stay lists."""
    flat: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict) and item:
            flat.update(flatten(item, f"{name}."))
        else:
            flat[name] = item
    return flat


def _sniff_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","
