"""What every CLI verb shares: the console, turning library errors into exit code 1, opening a dataset."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from personas.data import Dataset, clean_dataset, load_builtin, load_dataset, load_recbole
from personas.data.builtin import is_builtin
from personas.data.hints import hint_style
from personas.data.loaders import FORMATS, UnknownIdPolicy
from personas.errors import DataError, PersonasError

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


def user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """A PersonasError ends the command with its message and exit code 1, not a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except PersonasError as exc:
            err_console.print(f"[bold red]Error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=1) from None

    return wrapper


def parse_mapping(pairs: list[str]) -> dict[str, dict[str, str]]:
    """``interactions.user_id=userId`` pairs -> ``{"interactions": {"user_id": "userId"}}``."""
    out: dict[str, dict[str, str]] = {}
    for pair in pairs:
        key, sep, source = pair.partition("=")
        kind, dot, canonical = key.partition(".")
        if not sep or not dot or not source:
            raise DataError(f"--map {pair!r} is not KIND.FIELD=COLUMN; e.g. --map interactions.user_id=userId.")
        out.setdefault(kind, {})[canonical] = source
    return out


def _pick(folder: Path, stem: str) -> Path | None:
    for suffix in (".csv", ".tsv", ".parquet", ".jsonl"):
        if (folder / f"{stem}{suffix}").exists():
            return folder / f"{stem}{suffix}"
    return None


#: The options of every command that reads data, spelled as in the pipeline TOML's [data] section.
MapOption = Annotated[
    list[str] | None,
    typer.Option("--map", help="Column mapping KIND.FIELD=COLUMN (repeatable), e.g. interactions.user_id=userId."),
]
EncodingOption = Annotated[str, typer.Option("--encoding", help="Text encoding of the data files, e.g. latin-1.")]
DelimiterOption = Annotated[
    str | None,
    typer.Option("--delimiter", help="Field separator of delimited files (default: by extension); 'tab' for a tab."),
]
UnknownIdsOption = Annotated[str, typer.Option(help="Interactions naming unknown ids: error or drop.")]


def data_options(mapping: list[str] | None, encoding: str, delimiter: str | None) -> list[str]:
    """The data options as typed, to repeat a command (e.g. in a report's "Command:" line)."""
    parts = [part for pair in mapping or [] for part in ("--map", pair)]
    if encoding != "utf-8":
        parts += ["--encoding", encoding]
    if delimiter is not None:
        parts += ["--delimiter", delimiter]
    return parts


def _delimiter(value: str | None) -> str | None:
    if value is None:
        return None
    if value.lower() in ("tab", "\\t", "\t"):
        return "\t"
    if len(value) != 1:
        raise DataError(f"--delimiter must be one character (or 'tab'). Got {value!r} instead.")
    return value


def open_dataset(
    name_or_path: str,
    mapping: list[str] | None = None,
    unknown_ids: str = "error",
    *,
    encoding: str = "utf-8",
    delimiter: str | None = None,
) -> Dataset:
    """A built-in dataset by name, or files: an interactions file, a folder of RecBole atomic files, or a
    folder with ``interactions.*`` (+ optional ``users.*``, ``items.*``, ``tags.*``). Hints in the data's
    errors are written as command-line flags."""
    with hint_style("cli"):
        return _open_dataset(name_or_path, mapping, unknown_ids, encoding, _delimiter(delimiter))


def _open_dataset(
    name_or_path: str, mapping: list[str] | None, unknown_ids: str, encoding: str, delimiter: str | None
) -> Dataset:
    if is_builtin(name_or_path):
        return load_builtin(name_or_path, echo=lambda m: err_console.print(m, highlight=False))
    path = Path(name_or_path)
    columns = parse_mapping(mapping or [])
    if unknown_ids not in ("error", "drop"):
        raise DataError(f"--unknown-ids must be 'error' or 'drop'. Got {unknown_ids!r} instead.")
    policy: UnknownIdPolicy = "drop" if unknown_ids == "drop" else "error"
    if path.is_dir():
        if any(path.glob("*.inter")):
            dataset, report = load_recbole(path, columns=columns, unknown_ids=policy, encoding=encoding)
        else:
            inter = _pick(path, "interactions")
            if inter is None:
                raise DataError(f"{path}: no interactions.csv/.tsv/.parquet/.jsonl and no RecBole .inter file here.")
            dataset, report = load_dataset(
                inter,
                users=_pick(path, "users"),
                items=_pick(path, "items"),
                tags=_pick(path, "tags"),
                columns=columns,
                unknown_ids=policy,
                name=path.name,
                encoding=encoding,
                delimiter=delimiter,
            )
    elif path.is_file() and path.suffix.lower() in FORMATS:
        dataset, report = load_dataset(
            path, columns=columns, unknown_ids=policy, encoding=encoding, delimiter=delimiter
        )
    elif path.is_file():
        raise DataError(
            f"{path} is a file, but not a data file: its extension {path.suffix!r} is none of "
            f"{', '.join(sorted(FORMATS))}. "
            + (
                f"It looks like a run config: run it with `personas run {path}`, or describe its data with "
                f"`personas data info {path}`."
                if path.suffix.lower() == ".toml"
                else "Rename it if it is CSV or TSV text."
            )
        )
    else:
        from personas.data.builtin import BUILTIN

        raise DataError(
            f"{name_or_path!r} is neither a built-in dataset ({', '.join(sorted(BUILTIN))}) nor an existing "
            "data file or folder."
        )
    for warning in report.warnings:
        err_console.print(f"[yellow]Warning:[/] {escape(warning)}", highlight=False)
    # A user's files get the pipeline's default [data.clean] (markup, links, mentions), so `personas discover`
    # and `encode` describe the same words as `personas run`; the built-in datasets are clean already.
    dataset, cleaning = clean_dataset(dataset)
    if cleaning.changed:
        err_console.print(f"[dim]{escape(cleaning.summary())}[/]", highlight=False)
    return dataset
