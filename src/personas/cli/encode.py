"""``personas encode``: one vector per user of a dataset, written to .npy or Parquet."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from personas._files import atomic_path, write_atomic
from personas.cli._common import (
    DelimiterOption,
    EncodingOption,
    MapOption,
    UnknownIdsOption,
    console,
    err_console,
    open_dataset,
    user_errors,
)
from personas.errors import ConfigError

ENCODERS = ("minilm", "minilm-onnx-fp32", "sentence-transformers", "tfidf", "multilingual", "behaviour", "fusion")


def _write(path: Path, user_ids: list[str], vectors: np.ndarray, meta: dict[str, Any]) -> list[Path]:
    """``.npy`` (rows in the dataset's user order, + ``.json`` with ids and encoder) or ``.parquet``
    (``user_id`` + ``vector``); each file written to a temporary name and renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".parquet"):
        raise ConfigError(f"--out {path}: use a .npy or .parquet file name.")

    if suffix == ".npy":
        sidecar = path.with_suffix(".json")
        with atomic_path(path) as tmp, tmp.open("wb") as handle:
            np.save(handle, vectors, allow_pickle=False)
        write_atomic(sidecar, json.dumps({**meta, "user_ids": user_ids}, indent=1))
        return [path, sidecar]
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "user_id": pa.array(user_ids, pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel(), pa.float32()), vectors.shape[1]),
        }
    ).replace_schema_metadata({"personas": json.dumps(meta)})
    with atomic_path(path) as tmp:
        pq.write_table(table, str(tmp))
    return [path]


@user_errors
def encode(
    source: Annotated[str, typer.Argument(help="A built-in dataset name, a data file or a data folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file: .npy (+ .json with ids) or .parquet.")],
    encoder: Annotated[str, typer.Option(help=f"One of: {', '.join(ENCODERS)}.")] = "minilm",
    threads: Annotated[int | None, typer.Option(help="CPU threads for the model (default: all).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Texts per forward pass (encoder default if unset).")] = None,
    text_weight: Annotated[float, typer.Option(help="fusion only: weight of text against behaviour.")] = 0.5,
    cache: Annotated[bool, typer.Option(help="Keep text vectors in PERSONAS_HOME/embeddings.")] = True,
    device: Annotated[
        str, typer.Option(help="cpu, cuda (falls back to the CPU with a warning) or auto; model encoders only.")
    ] = "cpu",
    config: Annotated[
        str | None,
        typer.Option(
            help='An encoder config as JSON text or a .json file, e.g. \'{"kind": "onnx", "threads": 1}\'; '
            "replaces --encoder, --threads and --device."
        ),
    ] = None,
    map_: MapOption = None,
    encoding: EncodingOption = "utf-8",
    delimiter: DelimiterOption = None,
    unknown_ids: UnknownIdsOption = "error",
) -> None:
    """Encode every user's profile text (and/or behaviour) into one unit vector per user."""
    from personas.data import build_profiles
    from personas.encode import BehaviourEncoder, CachedEncoder, FusionEncoder, TfidfEncoder, make_encoder

    if encoder not in ENCODERS:
        raise ConfigError(f"--encoder must be one of {', '.join(ENCODERS)}. Got {encoder!r} instead.")
    if out.suffix.lower() not in (".npy", ".parquet"):
        raise ConfigError(f"--out {out}: use a .npy or .parquet file name.")
    if device not in ("cpu", "cuda", "auto"):
        raise ConfigError(f"--device must be one of cpu, cuda, auto. Got {device!r} instead.")
    configured = None if config is None else make_encoder(_config_text(config))
    dataset = open_dataset(source, map_, unknown_ids, encoding=encoding, delimiter=delimiter)
    started = time.perf_counter()
    note = ""
    if configured is not None:
        vectors, name = _encode_configured(configured, dataset, batch_size)
    elif encoder == "behaviour":
        behaviour = BehaviourEncoder().fit(dataset)
        vectors, name = behaviour.vectors_, behaviour.name
    else:
        texts = build_profiles(dataset)
        params: dict[str, Any] = {}
        if encoder in ("minilm", "minilm-onnx-fp32", "sentence-transformers", "multilingual", "fusion"):
            params["threads"] = threads
        if encoder in ("minilm", "minilm-onnx-fp32", "sentence-transformers", "fusion"):
            params["device"] = device
        text_encoder: Any
        if encoder == "tfidf":
            text_encoder = TfidfEncoder().fit(texts)
        else:
            text_encoder = make_encoder("minilm" if encoder == "fusion" else encoder, **params)
        if cache and encoder != "tfidf":  # a TF-IDF fit is cheaper than a cache lookup
            text_encoder = CachedEncoder(text_encoder)
        if encoder == "fusion":
            fusion = FusionEncoder(text_encoder, text_weight=text_weight).fit(dataset, texts=texts, show_progress=True)
            vectors, name = fusion.vectors_, fusion.name
        else:
            vectors = text_encoder.encode(texts, batch_size=batch_size, show_progress=True)
            name = text_encoder.name
        if isinstance(text_encoder, CachedEncoder):
            note = f"; cache: {text_encoder.last_hits} hit(s), {text_encoder.last_misses} encoded"
    seconds = time.perf_counter() - started
    meta = {"dataset": dataset.name, "fingerprint": dataset.fingerprint(), "encoder": name, "dim": vectors.shape[1]}
    written = _write(out, [str(u) for u in dataset.user_vocab.ids], vectors, meta)
    err_console.print(f"{dataset.n_users:,} users x {vectors.shape[1]} dims in {seconds:.1f} s{note}", highlight=False)
    console.print(f"{encoder}: {', '.join(str(p) for p in written)}", highlight=False)


def _config_text(value: str) -> str:
    """``--config``: JSON text as it is, or the contents of a .json file."""
    if value.lstrip().startswith("{"):
        return value
    path = Path(value)
    if not path.is_file():
        raise ConfigError(f"--config {value!r} is neither JSON text (starting with '{{') nor an existing .json file.")
    return path.read_text(encoding="utf-8")


def _encode_configured(encoder: Any, dataset: Any, batch_size: int | None) -> tuple[np.ndarray, str]:
    """Vectors of every user from an encoder built from ``--config`` (fitted ones are fitted on the dataset)."""
    from personas.data import build_profiles
    from personas.encode import BehaviourEncoder, FusionEncoder, TfidfEncoder

    if isinstance(encoder, BehaviourEncoder | FusionEncoder):
        encoder.fit(dataset)
        return encoder.vectors_, encoder.name
    texts = build_profiles(dataset)
    if isinstance(encoder, TfidfEncoder):
        encoder.fit(texts)
    return encoder.encode(texts, batch_size=batch_size, show_progress=True), encoder.name
