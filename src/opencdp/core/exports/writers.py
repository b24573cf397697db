"""Export files (segments-exports.md §4.3): gzipped CSV or NDJSON, or Parquet with its gzip codec, split
every `maxRecordsPerFile` records, written as streams into the file store (a directory or a bucket).
Records stream through; nothing holds more than one Parquet row group and one part of an upload.
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any, BinaryIO, Protocol, cast

import orjson

from opencdp.core.exports.records import Shape, csv_cells, csv_columns, csv_line
from opencdp.core.values import parse_timestamp
from opencdp.store.files import FileStore

PARQUET_ROW_GROUP = 10_000
TIMESTAMPS = ("dateOfBirth", "firstSeen", "lastSeen", "createdAt", "modifiedAt", "orderedAt")
MONEY = ("price", "originalPrice")
LISTS = ("emails", "phoneNumbers", "street")

try:  # Parquet is optional: a server without pyarrow refuses the format (400) instead of failing runs
    import pyarrow as pa
    import pyarrow.parquet as pq
except ImportError:  # pragma: no cover - the test environment installs pyarrow
    pa = None
    pq = None


def parquet_available() -> bool:
    return pa is not None


@dataclass(frozen=True)
class Options:
    format: str
    delimiter: str = ","
    header: bool = True
    quote_all: bool = False


class RecordFile(Protocol):
    def write(self, records: list[dict[str, Any]]) -> None: ...

    def close(self) -> None: ...


def _gzipped(out: BinaryIO) -> BinaryIO:
    return cast(BinaryIO, gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6))


class _NdjsonFile:
    def __init__(self, out: BinaryIO) -> None:
        self.out = _gzipped(out)

    def write(self, records: list[dict[str, Any]]) -> None:
        self.out.write(b"".join(orjson.dumps(record) + b"\n" for record in records))

    def close(self) -> None:
        self.out.close()


class _CsvFile:
    def __init__(self, out: BinaryIO, shape: Shape, options: Options) -> None:
        self.out = _gzipped(out)
        self.shape, self.options = shape, options
        if options.header:
            self.out.write(csv_line(csv_columns(shape), options.delimiter, options.quote_all))

    def write(self, records: list[dict[str, Any]]) -> None:
        delimiter, quote_all = self.options.delimiter, self.options.quote_all
        self.out.write(b"".join(csv_line(csv_cells(record, self.shape), delimiter, quote_all) for record in records))

    def close(self) -> None:
        self.out.close()


class _ParquetFile:
    def __init__(self, out: BinaryIO, shape: Shape, key_types: Mapping[str, str]) -> None:
        self.schema = parquet_schema(shape, key_types)
        self.writer = pq.ParquetWriter(out, self.schema, compression="gzip")
        self.rows: list[dict[str, Any]] = []

    def write(self, records: list[dict[str, Any]]) -> None:
        self.rows += [_typed(record) for record in records]
        if len(self.rows) >= PARQUET_ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self) -> None:
        self._flush()
        self.writer.close()


def _typed(record: dict[str, Any]) -> dict[str, Any]:
    """An NDJSON record as Parquet columns want it: real timestamps, order and item `ext` as JSON text."""
    shown = _timestamps(record)
    if "orders" in record:
        shown["orders"] = [
            {
                **_timestamps(order, json_ext=True),
                "items": [_timestamps(item, json_ext=True) for item in order["items"]],
            }
            for order in record["orders"]
        ]
    return shown


def _timestamps(values: dict[str, Any], *, json_ext: bool = False) -> dict[str, Any]:
    shown = {key: parse_timestamp(v) if key in TIMESTAMPS and isinstance(v, str) else v for key, v in values.items()}
    if json_ext and "ext" in shown:
        shown["ext"] = orjson.dumps(shown["ext"]).decode()
    return shown


def _field_type(name: str) -> Any:
    if name in TIMESTAMPS:
        return pa.timestamp("ms", tz="UTC")
    if name in MONEY:
        return pa.float64()
    if name == "quantity":
        return pa.int64()
    if name in LISTS:
        return pa.list_(pa.string())
    return pa.string()


def parquet_schema(shape: Shape, key_types: Mapping[str, str]) -> Any:
    value_types = {"string": pa.string(), "number": pa.float64(), "boolean": pa.bool_()}
    fields = [pa.field("ref", pa.string())]
    fields += [pa.field(name, _field_type(name)) for name in shape.guest]
    if shape.identifiers:
        fields.append(pa.field("identifiers", pa.struct([(p, pa.list_(pa.string())) for p in shape.identifiers])))
    if shape.extensions:
        groups: dict[str, list[Any]] = {}
        for group, key in shape.extensions:
            groups.setdefault(group, []).append((key, value_types.get(key_types.get(key, "string"), pa.string())))
        fields.append(pa.field("extensions", pa.struct([(g, pa.struct(keys)) for g, keys in groups.items()])))
    if shape.orders is not None:
        ext = [("ext", pa.string())] if shape.orders["extensions"] else []
        item = pa.struct([(name, _field_type(name)) for name in shape.orders["itemFields"]] + ext)
        order = pa.struct(
            [(name, _field_type(name)) for name in shape.orders["fields"]] + ext + [("items", pa.list_(item))]
        )
        fields.append(pa.field("orders", pa.list_(order)))
    return pa.schema(fields)


@dataclass
class WrittenFile:
    name: str
    size: int
    records: int
    delta_action: str | None


class FileSeries:
    """The files of one part of a run (everything, or the add or remove side of a delta), under a prefix of
    the file store. Used as a context: a file being written when the run fails is never stored."""

    def __init__(
        self,
        files: FileStore,
        prefix: str,
        stem: str,
        shape: Shape,
        options: Options,
        max_records: int,
        key_types: Mapping[str, str],
        delta_action: str | None = None,
    ) -> None:
        self.store, self.prefix, self.stem, self.shape, self.options = files, prefix, stem, shape, options
        self.max_records, self.key_types, self.delta_action = max_records, key_types, delta_action
        self.files: list[WrittenFile] = []
        self.current: RecordFile | None = None
        self.writing = ExitStack()
        self.count = 0

    def __enter__(self) -> FileSeries:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.writing.__exit__(kind, error, trace)  # on failure, the store drops the file being written

    def _open(self) -> None:
        n = len(self.files) + 1
        part = f"-{self.delta_action}" if self.delta_action else ""
        suffix = ".parquet" if self.options.format == "parquet" else f".{self.options.format}.gz"
        name = f"{self.stem}{part}-{n}{suffix}"
        out = self.writing.enter_context(self.store.writer(self.prefix + name))
        if self.options.format == "parquet":
            self.current = _ParquetFile(out, self.shape, self.key_types)
        elif self.options.format == "csv":
            self.current = _CsvFile(out, self.shape, self.options)
        else:
            self.current = _NdjsonFile(out)
        self.files.append(WrittenFile(name, 0, 0, self.delta_action))
        self.count = 0

    def write(self, records: list[dict[str, Any]]) -> None:
        """Append records, starting a new file whenever the current one holds `max_records`."""
        while records:
            if self.current is None or self.count >= self.max_records:
                self._close_current()
                self._open()
            assert self.current is not None
            taken, records = records[: self.max_records - self.count], records[self.max_records - self.count :]
            self.current.write(taken)
            self.count += len(taken)
            self.files[-1].records += len(taken)

    def _close_current(self) -> None:
        if self.current is not None:
            self.current.close()
            self.writing.close()  # the file is stored whole
            self.files[-1].size = self.store.size(self.prefix + self.files[-1].name) or 0
            self.current = None

    def close(self) -> list[WrittenFile]:
        """Finish the last file; a series always leaves at least one (maybe empty) file behind."""
        if not self.files:
            self._open()
        self._close_current()
        return self.files
