"""Read users, items, interactions and tags from CSV, TSV, Parquet, JSONL and RecBole atomic files.

Every value is checked; a problem raises :class:`~personas.errors.DataError` naming the file, the line
and column (the row, for Parquet), the offending value and how to fix it.

Column mapping is explicit: ``columns={"user_id": "userId", "item_id": "movieId"}`` maps canonical names
(left) to the names in the file (right). Columns of a user or item file that are not mapped are kept as
attributes; unmapped interaction columns are ignored.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from personas.data.dataset import Dataset
from personas.data.hints import column_setting, current_style, setting
from personas.errors import DataError

__all__ = [
    "FORMATS",
    "LoadReport",
    "Table",
    "UnknownIdPolicy",
    "load_dataset",
    "load_recbole",
    "read_table",
]

Kind = Literal["users", "items", "interactions", "tags"]
Format = Literal["csv", "tsv", "parquet", "jsonl", "atomic"]
UnknownIdPolicy = Literal["error", "drop"]

FORMATS: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".inter": "atomic",
    ".user": "atomic",
    ".item": "atomic",
}

# canonical column -> (required, type); "id" and "text" are strings, "number" floats, "time" epoch seconds
_SCHEMA: dict[Kind, dict[str, tuple[bool, str]]] = {
    "users": {"user_id": (True, "id"), "text": (False, "text")},
    "items": {"item_id": (True, "id"), "title": (False, "text"), "text": (False, "text")},
    "interactions": {
        "user_id": (True, "id"),
        "item_id": (True, "id"),
        "rating": (False, "number"),
        "timestamp": (False, "time"),
        "review": (False, "text"),
    },
    "tags": {"user_id": (True, "id"), "item_id": (True, "id"), "tag": (True, "text"), "timestamp": (False, "time")},
}
_KEEP_EXTRA: dict[Kind, bool] = {"users": True, "items": True, "interactions": False, "tags": False}
_DELIMITERS = {"csv": ",", "tsv": "\t", "atomic": "\t"}


@dataclass
class Table:
    """One validated file in canonical columns, with what is needed to point at its lines."""

    path: Path
    format: Format
    kind: Kind
    frame: pd.DataFrame
    source_columns: dict[str, str]  # canonical -> column name in the file
    header: list[str]
    _text: str | None = field(default=None, repr=False)
    _delimiter: str = ","
    _lines: np.ndarray | None = field(default=None, repr=False)  # JSONL: 0-based line of each row

    def where(self, row: int, canonical: str | None = None) -> str:
        """'file, line L, column C ('name')' for a data row (0-based) and a canonical column."""
        if self.format == "parquet":
            place = f"{self.path}, row {row + 1}"
        elif self.format == "jsonl":
            line = row if self._lines is None else int(self._lines[row])
            place = f"{self.path}, line {line + 1}"
        else:
            place = f"{self.path}, line {self._csv_line(row)}"
        if canonical is None:
            return place
        source = self.source_columns.get(canonical, canonical)
        if self.format in ("jsonl", "parquet"):
            return f"{place}, field {source!r}"
        return f"{place}, column {self.header.index(source) + 1} ({source!r})"

    def _csv_line(self, row: int) -> int:
        # Exact physical line even with quoted multi-line fields; only computed when reporting an error.
        if self._text is None:
            return row + 2
        reader = csv.reader(io.StringIO(self._text), delimiter=self._delimiter)
        next(reader, None)
        line = reader.line_num + 1
        for index, _ in enumerate(reader):
            if index == row:
                return line
            line = reader.line_num + 1
        return line


@dataclass
class LoadReport:
    """What loading did besides returning the dataset: rows read, rows dropped and why."""

    rows_read: dict[str, int] = field(default_factory=dict)
    dropped_unknown_users: int = 0
    dropped_unknown_items: int = 0
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------- reading
def detect_format(path: Path) -> Format:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"{path}: cannot tell the format from the extension {path.suffix!r}. "
            f"Use one of {sorted(FORMATS)}"
            + (" or pass format= explicitly." if current_style() == "python" else ": rename the file.")
        )
    return fmt


def _decode(path: Path, raw: bytes, encoding: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        bad = raw[exc.start : exc.end]
        raise DataError(
            f"{path}, line {line}, column {column} (byte {column} of the line): byte(s) {bad!r} are not "
            f"valid {encoding}. Re-save the file as UTF-8, or give the file's real encoding "
            f"(e.g. {setting('encoding', 'latin-1')})."
        ) from None


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise DataError(f"{path}: file not found. Check the path.")
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"{path}: the file is empty ({len(raw)} bytes). Expected a header line and data rows.")
    return raw


def _read_delimited(path: Path, fmt: Format, delimiter: str | None, encoding: str) -> tuple[pd.DataFrame, str, str]:
    text = _decode(path, _read_bytes(path), encoding)
    if text.startswith("\ufeff"):
        text = text[1:]
    sep = delimiter or _DELIMITERS[fmt]
    try:
        frame = pd.read_csv(
            io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_filter=False, quotechar='"'
        )
    except pd.errors.ParserError as exc:
        raise DataError(
            f"{path}: cannot parse as {fmt.upper()} with delimiter {sep!r}: {exc}. "
            "Check that every row has as many fields as the header."
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty. Expected a header line and data rows.") from None
    _check_unique_header(path, text, sep)
    if fmt == "atomic":
        frame.columns = [str(c).split(":", 1)[0] for c in frame.columns]
    return frame, text, sep


def _check_unique_header(path: Path, text: str, sep: str) -> None:
    """pandas renames a repeated column to 'name.1' silently; one of the two would then be read for the other."""
    header = next(csv.reader(io.StringIO(text), delimiter=sep), [])
    seen: dict[str, int] = {}
    for number, name in enumerate(header, start=1):
        key = name.strip()
        if key in seen:
            raise DataError(
                f"{path}, line 1 (header): column {key!r} appears twice (columns {seen[key]} and {number}). "
                "Rename or remove one of them."
            )
        seen[key] = number


def _read_jsonl(path: Path, encoding: str) -> pd.DataFrame:
    text = _decode(path, _read_bytes(path), encoding)
    records: list[dict[str, object]] = []
    lines: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}, line {number}, column {exc.colno}: not valid JSON ({exc.msg}): {line[:80]!r}. "
                "Each line must be one JSON object."
            ) from None
        if not isinstance(record, dict):
            raise DataError(
                f"{path}, line {number}, column 1: expected a JSON object, got {type(record).__name__} "
                f'{line[:80]!r}. Each line must be one JSON object such as {{"user_id": "1"}}.'
            )
        records.append(record)
        lines.append(number - 1)  # the frame index carries the 0-based line for error messages
    return pd.DataFrame.from_records(records, index=pd.Index(lines))


def _read_parquet(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"{path}: file not found. Check the path.")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a bad file
        raise DataError(f"{path}: not a readable Parquet file ({exc}). Check the file is complete.") from None
    if frame.empty and not len(frame.columns):
        raise DataError(f"{path}: the file is empty. Expected columns and rows.")
    return frame


def read_table(
    path: str | Path,
    kind: Kind,
    *,
    columns: Mapping[str, str] | None = None,
    format: Format | None = None,
    delimiter: str | None = None,
    encoding: str = "utf-8",
) -> Table:
    """Read and validate one file of the given kind; columns renamed to canonical names."""
    path = Path(path)
    fmt = format or detect_format(path)
    text: str | None = None
    sep = ","
    if fmt in ("csv", "tsv", "atomic"):
        frame, text, sep = _read_delimited(path, fmt, delimiter, encoding)
    elif fmt == "jsonl":
        frame = _read_jsonl(path, encoding)
    elif fmt == "parquet":
        frame = _read_parquet(path)
    else:
        raise DataError(f"{path}: unknown format {fmt!r}; use one of {sorted(set(FORMATS.values()))}.")
    header = [str(c) for c in frame.columns]
    schema = _SCHEMA[kind]
    mapping = {name: name for name in schema}
    unknown_keys = set(columns or {}) - set(schema)
    if unknown_keys:
        raise DataError(
            f"{path}: column mapping names {sorted(unknown_keys)}, which are not {kind} fields. "
            f"Allowed: {sorted(schema)}."
        )
    mapping.update(columns or {})
    _check_delimiter(path, fmt, header, text, sep, mapping, schema)
    _check_required(path, kind, header, mapping, schema)
    present = {canon: src for canon, src in mapping.items() if src in header}
    if len(frame) == 0:
        raise DataError(f"{path}: the file has a header ({', '.join(header)}) but no data rows.")
    lines = frame.index.to_numpy() if fmt == "jsonl" else None
    table = Table(path, fmt, kind, frame.reset_index(drop=True), present, header, text, sep, lines)
    table.frame = _canonical_frame(table, schema)
    return table


def _check_delimiter(
    path: Path,
    fmt: Format,
    header: list[str],
    text: str | None,
    sep: str,
    mapping: Mapping[str, str],
    schema: Mapping[str, tuple[bool, str]],
) -> None:
    if text is None or len(header) > 1:
        return
    first = text.splitlines()[0] if text else ""
    for other, label in ((",", "comma"), ("\t", "tab"), (";", "semicolon"), ("|", "pipe")):
        if other != sep and other in first:
            raise DataError(
                f"{path}, line 1: the header {first[:80]!r} has a single column with delimiter {sep!r}, "
                f"but contains {label}s. The file looks {label}-separated: set {setting('delimiter', other)}"
                + (" or name the file .tsv" if other == "\t" else "")
                + "."
            )
    required = [c for c, (req, _) in schema.items() if req]
    if len(required) > 1:
        raise DataError(
            f"{path}, line 1: the header {first[:80]!r} has a single column; expected at least "
            f"{[mapping[c] for c in required]}. Check the delimiter (now {sep!r})."
        )


def _check_required(
    path: Path, kind: Kind, header: list[str], mapping: Mapping[str, str], schema: Mapping[str, tuple[bool, str]]
) -> None:
    for canon, (required, _) in schema.items():
        source = mapping[canon]
        if required and source not in header:
            hint = column_setting(kind, canon)
            raise DataError(
                f"{path}, line 1 (header): required {kind} column {source!r} (for {canon!r}) is missing. "
                f"Columns present: {header}. Rename the column or map it with {hint}."
            )
        if not required and source != canon and source not in header:
            raise DataError(
                f"{path}, line 1 (header): mapped column {source!r} (for {canon!r}) is missing. "
                f"Columns present: {header}."
            )


def _is_empty(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _canonical_frame(table: Table, schema: Mapping[str, tuple[bool, str]]) -> pd.DataFrame:
    raw = table.frame
    out: dict[str, object] = {}
    for canon, source in table.source_columns.items():
        col = raw[source]
        kind_of_value = schema[canon][1]
        if kind_of_value == "id":
            out[canon] = _ids(table, canon, col)
        elif kind_of_value == "number":
            out[canon] = _numbers(table, canon, col)
        elif kind_of_value == "time":
            out[canon] = _times(table, canon, col)
        else:
            out[canon] = [None if _is_empty(v) else str(v) for v in col.to_numpy(dtype=object)]
    frame = pd.DataFrame(out)
    if _KEEP_EXTRA[table.kind]:
        used = set(table.source_columns.values())
        for name in raw.columns:
            if name not in used:
                frame[str(name)] = [None if _is_empty(v) else v for v in raw[name].to_numpy(dtype=object)]
    return frame


def _empty_mask(col: pd.Series) -> np.ndarray:
    values = pd.Series(np.asarray(col, dtype=object))
    return (values.isna() | values.astype(str).str.strip().eq("")).to_numpy()


def _ids(table: Table, canon: str, col: pd.Series) -> np.ndarray:
    empty = _empty_mask(col)
    if empty.any():
        row = int(np.flatnonzero(empty)[0])
        value = col.iloc[row]
        shown = repr(value) if isinstance(value, str) else "(missing)"
        raise DataError(
            f"{table.where(row, canon)}: empty {canon.replace('_', ' ')} {shown} ({int(empty.sum())} empty in "
            "all). Every row needs a non-empty id; fill or remove these rows."
        )
    if pd.api.types.is_float_dtype(col.dtype):
        # Parquet/JSON numbers: 42.0 and 42 are the same id.
        return np.asarray([str(int(v)) if float(v).is_integer() else str(v) for v in col], dtype=object)
    return np.asarray(pd.Series(np.asarray(col, dtype=object)).astype(str).str.strip(), dtype=object)


def _numbers(table: Table, canon: str, col: pd.Series) -> np.ndarray:
    empty = _empty_mask(col)
    values = pd.Series(np.asarray(col, dtype=object)).where(~empty, None)
    result = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    bad = np.flatnonzero(np.isnan(result) & ~empty)
    if len(bad):
        row = int(bad[0])
        raise DataError(
            f"{table.where(row, canon)}: {canon} {col.iloc[row]!r} is not a number "
            f"({len(bad)} such values in all). Use plain numbers such as 4 or 3.5, or leave the cell empty."
        )
    return result


def _times(table: Table, canon: str, col: pd.Series) -> np.ndarray:
    empty = _empty_mask(col)
    values = pd.Series(np.asarray(col, dtype=object)).where(~empty, None)
    numeric = pd.to_numeric(values, errors="coerce")
    result = numeric.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    not_numeric = np.flatnonzero(np.isnan(result) & ~empty)
    if len(not_numeric):
        # Values that are not numbers may be ISO 8601 date-times, e.g. 2016-10-16T12:00:00Z.
        texts = values.iloc[not_numeric]
        parsed = pd.to_datetime(texts, errors="coerce", utc=True, format="ISO8601")
        bad = not_numeric[parsed.isna().to_numpy()]
        if len(bad):
            row = int(bad[0])
            raise DataError(
                f"{table.where(row, canon)}: {canon} {col.iloc[row]!r} is neither a number (seconds since "
                f"1970) nor an ISO 8601 date-time ({len(bad)} such values in all). "
                "Use e.g. 881250949 or 1997-12-04T15:55:49Z."
            )
        epoch = pd.Timestamp(0, tz="UTC")
        result[not_numeric] = ((parsed - epoch) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64)
    return np.where(np.isnan(result), -1, result).astype(np.int64)


# --------------------------------------------------------------------------------------------- assembly
def _check_unique(table: Table, id_col: str, what: str) -> None:
    ids = table.frame[id_col]
    dup = ids.duplicated(keep="first").to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        value = ids.iloc[row]
        first = int(np.flatnonzero((ids == value).to_numpy())[0])
        raise DataError(
            f"{table.where(row, id_col)}: duplicate {what} id {value!r} (first at "
            f"{table.where(first).split(', ', 1)[1]}; {int(dup.sum())} duplicate rows in all). "
            f"Each {what} must appear once: remove or merge the duplicate rows."
        )


def _resolve_unknown(
    inter: Table, column: str, known: set[str], known_file: Path, what: str, policy: UnknownIdPolicy
) -> np.ndarray:
    """Boolean mask of interaction rows whose id is known; raise under the 'error' policy."""
    ids = inter.frame[column]
    ok = ids.isin(known).to_numpy()
    if not ok.all() and policy == "error":
        row = int(np.flatnonzero(~ok)[0])
        raise DataError(
            f"{inter.where(row, column)}: {what} id {ids.iloc[row]!r} is not in {known_file} "
            f"({int((~ok).sum())} interaction rows name unknown {what}s). Add the {what}s to {known_file}, "
            f"or drop those rows with {setting('unknown_ids', 'drop')} (the report says how many)."
        )
    return np.asarray(ok, dtype=bool)


def load_dataset(
    interactions: str | Path,
    *,
    users: str | Path | None = None,
    items: str | Path | None = None,
    tags: str | Path | None = None,
    columns: Mapping[str, Mapping[str, str]] | None = None,
    unknown_ids: UnknownIdPolicy = "error",
    name: str | None = None,
    delimiter: str | None = None,
    encoding: str = "utf-8",
    formats: Mapping[str, Format] | None = None,
) -> tuple[Dataset, LoadReport]:
    """Load a dataset from files; ``columns`` maps per kind, e.g. ``{"interactions": {"user_id": "userId"}}``.

    Interactions naming users or items absent from the users/items files follow ``unknown_ids``:
    ``"error"`` (default) raises, ``"drop"`` drops those rows and counts them in the report.
    """
    if unknown_ids not in ("error", "drop"):
        raise DataError(f"unknown_ids must be 'error' or 'drop'. Got {unknown_ids!r} instead.")
    columns = columns or {}
    formats = formats or {}
    report = LoadReport()

    def read(path: str | Path, kind: Kind) -> Table:
        table = read_table(
            path, kind, columns=columns.get(kind), format=formats.get(kind), delimiter=delimiter, encoding=encoding
        )
        report.rows_read[kind] = len(table.frame)
        return table

    fast = _load_columnar(interactions, users, items, tags, columns, formats, read, name, report)
    if fast is not None:
        return fast, report
    inter = read(interactions, "interactions")
    user_table = read(users, "users") if users is not None else None
    item_table = read(items, "items") if items is not None else None
    tag_table = read(tags, "tags") if tags is not None else None
    keep = np.ones(len(inter.frame), dtype=bool)
    if user_table is not None:
        _check_unique(user_table, "user_id", "user")
        ok = _resolve_unknown(inter, "user_id", set(user_table.frame["user_id"]), user_table.path, "user", unknown_ids)
        report.dropped_unknown_users = int((~ok).sum())
        keep &= ok
    if item_table is not None:
        _check_unique(item_table, "item_id", "item")
        ok = _resolve_unknown(inter, "item_id", set(item_table.frame["item_id"]), item_table.path, "item", unknown_ids)
        report.dropped_unknown_items = int((~ok & keep).sum())
        keep &= ok
    dropped = int((~keep).sum())
    if dropped:
        report.warnings.append(
            f"Dropped {dropped} of {len(keep)} interactions naming unknown ids "
            f"({report.dropped_unknown_users} unknown users, {report.dropped_unknown_items} unknown items)."
        )
    tag_frame = None
    if tag_table is not None:
        tag_frame = tag_table.frame
        if user_table is not None:
            known_tag = tag_frame["user_id"].isin(set(user_table.frame["user_id"]))
            tag_frame = tag_frame[known_tag.to_numpy()]
    dataset = Dataset.from_frames(
        inter.frame[keep].reset_index(drop=True),
        users=user_table.frame if user_table is not None else None,
        items=item_table.frame if item_table is not None else None,
        tags=tag_frame,
        name=name or Path(interactions).stem,
        source=str(interactions),
    )
    return dataset, report


def load_recbole(
    folder: str | Path,
    *,
    name: str | None = None,
    columns: Mapping[str, Mapping[str, str]] | None = None,
    unknown_ids: UnknownIdPolicy = "error",
    encoding: str = "utf-8",
) -> tuple[Dataset, LoadReport]:
    """Load RecBole atomic files ``NAME.inter`` (+ optional ``NAME.user``, ``NAME.item``) from a folder."""
    folder = Path(folder)
    if folder.is_file():
        folder, name = folder.parent, name or folder.stem
    inters = sorted(folder.glob(f"{name}.inter" if name else "*.inter"))
    if len(inters) != 1:
        raise DataError(
            f"{folder}: expected exactly one {name or '*'}.inter file, found {[p.name for p in inters]}. "
            "Pass name= to pick one."
        )
    inter = inters[0]
    stem = inter.stem
    user = folder / f"{stem}.user"
    item = folder / f"{stem}.item"
    return load_dataset(
        inter,
        users=user if user.exists() else None,
        items=item if item.exists() else None,
        columns=columns,
        unknown_ids=unknown_ids,
        name=name or stem,
        encoding=encoding,
    )


# --------------------------------------------------------------------------------------------- columnar path
# Ids whose str.strip() is a no-op and that are not empty: printable ASCII at both ends (anything else takes
# the pandas path, whose rules and messages are the reference).
_PLAIN_ID = r"(?s)^[!-~](.*[!-~])?$"


def _arrow_ids(column: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray] | None:
    """The distinct ids of an integer or string Parquet column as strings, in order of first appearance, and
    each row's index into them; None when a value needs the pandas rules (missing, empty, surrounding spaces,
    non-ASCII ends, float ids). Ids repeat (20 interactions per user), so the checks run on distinct values."""
    if column.null_count:
        return None
    if not (
        pa.types.is_integer(column.type) or pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
    ):
        return None
    if pa.types.is_string(column.type) and column.nbytes >= 2**31:
        column = pc.cast(column, pa.large_string())  # one array's 32-bit offsets would overflow
    # One array, one dictionary, values in order of first appearance (unifying one dictionary per Parquet
    # page instead took 24 s at 2 x 10^7 rows).
    encoded = column.combine_chunks().dictionary_encode()
    values = pc.cast(encoded.dictionary, pa.string())
    codes = encoded.indices.to_numpy()  # int32: 4 bytes per interaction, not 8
    if not pa.types.is_integer(column.type) and not pc.all(pc.match_substring_regex(values, _PLAIN_ID)).as_py():
        return None
    return values, codes


def _arrow_numbers(column: pa.ChunkedArray) -> np.ndarray | None:
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        return None
    return np.array(column.to_numpy(), dtype=np.float64)  # nulls come as NaN; a writable copy


def _load_columnar(
    interactions: str | Path,
    users: str | Path | None,
    items: str | Path | None,
    tags: str | Path | None,
    columns: Mapping[str, Mapping[str, str]],
    formats: Mapping[str, Format],
    read: Callable[[str | Path, Kind], Table],
    name: str | None,
    report: LoadReport,
) -> Dataset | None:
    """The interactions of a Parquet file read, validated and mapped to rows as Arrow columns (no Python
    object per interaction), when every value is plain (ids present and unpadded, numeric ratings and times,
    every id known to the users/items files). None otherwise: the pandas path then reads the file, with its
    exact messages and the ``unknown_ids`` policy. Users, items and tags files always take that path."""
    path = Path(interactions)
    if (formats.get("interactions") or FORMATS.get(path.suffix.lower())) != "parquet" or not path.exists():
        return None
    schema = _SCHEMA["interactions"]
    mapping = {canon: canon for canon in schema} | dict(columns.get("interactions") or {})
    if set(mapping) - set(schema):
        return None
    try:
        names = set(pq.read_schema(path).names)
        present = {canon: src for canon, src in mapping.items() if src in names}
        if not {"user_id", "item_id"} <= set(present) or any(
            src != canon and canon not in present for canon, src in mapping.items()
        ):
            return None
        n = pq.read_metadata(path).num_rows

        def column(canon: str) -> pa.ChunkedArray:
            # One column read at a time: the whole table at once held ~0.7 GB more at 2 x 10^7 rows.
            return pq.read_table(path, columns=[present[canon]])[present[canon]]

        if n == 0:
            return None
        user_ids = _arrow_ids(column("user_id"))
        item_ids = _arrow_ids(column("item_id")) if user_ids is not None else None
        if user_ids is None or item_ids is None:
            return None
        ratings = _arrow_numbers(column("rating")) if "rating" in present else np.full(n, np.nan)
        times = _arrow_numbers(column("timestamp")) if "timestamp" in present else np.full(n, np.nan)
        if ratings is None or times is None:
            return None
        reviews = np.empty(n, dtype=object)
        if "review" in present:
            values = column("review").to_numpy(zero_copy_only=False)
            reviews[:] = [None if _is_empty(v) else str(v) for v in values]
            del values
    except (OSError, pa.ArrowException):
        return None
    report.rows_read["interactions"] = n
    entities = []
    for ids, file, kind, extra in (
        (user_ids, users, "users", ("text",)),
        (item_ids, items, "items", ("title", "text")),
    ):
        id_col = "user_id" if kind == "users" else "item_id"
        values, codes = ids
        if file is None:
            frame = pd.DataFrame({id_col: values.to_numpy(zero_copy_only=False).astype(object)})
        else:
            entity = read(file, kind)  # type: ignore[arg-type]
            _check_unique(entity, id_col, kind[:-1])
            frame = entity.frame
        for col in extra:
            if col not in frame:
                frame[col] = None
        front = [id_col, *extra]
        frame = frame[front + [c for c in frame.columns if c not in front]].reset_index(drop=True)
        rows = pc.index_in(values, value_set=pa.array(frame[id_col].to_numpy(dtype=object), type=pa.string()))
        if rows.null_count:  # an id the file does not know: the pandas path applies the policy
            return None
        entities.append((frame, rows.to_numpy().astype(np.int32)[codes]))
    (user_frame, user_rows), (item_frame, item_rows) = entities
    tag_frame = None
    if tags is not None:
        tag_frame = read(tags, "tags").frame
        if users is not None:
            tag_frame = tag_frame[tag_frame["user_id"].isin(set(user_frame["user_id"])).to_numpy()]
    dataset = Dataset.from_rows(
        user_frame,
        item_frame,
        user_rows=user_rows,
        item_rows=item_rows,
        ratings=ratings,
        timestamps=_missing_as(times, -1).astype(np.int64),
        reviews=reviews,
        tags=tag_frame,
        name=name or path.stem,
        source=str(interactions),
    )
    # Arrow's allocator keeps the pages the columns freed for its next call (~0.4 GB at 2 x 10^7 rows): hand
    # them back, what follows the load allocates with numpy and Python.
    pa.default_memory_pool().release_unused()
    return dataset


def _missing_as(values: np.ndarray, fill: float) -> np.ndarray:
    """``values`` (a writable float array of its own) with NaN replaced by ``fill``, in place."""
    values[np.isnan(values)] = fill
    return values
