"""A behaviour-tuned text space: a small projection head trained on interactions, over a frozen text encoder.

The base encoder (MiniLM, ...) stays frozen; its vectors go through a residual linear head::

    head(v) = normalize(v + v @ W + b)        W = 0, b = 0 at the start: the untrained head is the identity

trained contrastively (symmetric InfoNCE, in-batch negatives) on pairs taken from the interactions: a user's
text against an item's text the user took, and an item's text against another item taken by the same user.
The same head is applied to users and items, so both stay in one space (cosine still compares them).

Why a head and not LoRA: it needs no new dependency, trains in seconds on 2 CPU cores (only vectors go
through it; the encoder runs once), and its arrays (``weight``, ``bias``) are all there is to save.
Training stops on a held-out slice of the pairs (early stopping, plus weight decay) so it cannot overfit;
every random choice is seeded, so the same data and seed give the same head (on the same device).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from personas.config import ComponentConfig
from personas.encode._base import (
    Encoder,
    TextInput,
    progress_bar,
    resolve_device,
    unit_rows,
    want_progress,
)
from personas.encode._config import Device
from personas.errors import ConfigError, DataError

__all__ = ["HEAD_FILES", "ProjectionHead", "TuneConfig", "TunedEncoder", "tune_head"]

#: The files of a saved head, inside its folder (arrays as .npy, metadata as JSON; no pickle).
HEAD_FILES = ("weight.npy", "bias.npy", "head.json")
_FORMAT = "personas-projection-head"
_VERSION = 1


class TuneConfig(ComponentConfig):
    """How the projection head is trained (``[encode.tune_options]`` in a pipeline TOML)."""

    temperature: float = Field(0.1, gt=0.0, le=1.0, description="Softmax temperature of the InfoNCE loss.")
    epochs: int = Field(30, ge=1, le=1000, description="Most passes over the training pairs.")
    patience: int = Field(3, ge=1, description="Stop after this many epochs without a better held-out loss.")
    batch_size: int = Field(512, ge=2, description="Pairs per step; the other pairs of a batch are the negatives.")
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0)
    weight_decay: float = Field(1e-4, ge=0.0, description="AdamW weight decay on the head.")
    holdout: float = Field(0.1, gt=0.0, lt=0.5, description="Share of the pairs kept out for early stopping.")
    item_pairs: bool = Field(True, description="Also pair each item with another item taken by the same user.")
    max_pairs: int = Field(400_000, ge=10, description="At most this many pairs (a seeded sample beyond it).")
    bias: bool = Field(True, description="Learn a bias vector as well as the matrix.")
    device: Device = "auto"
    # 1 by default: with other processes on 2 cores, 2 threads measured 2-30x slower than 1 (bench/tune.py); on a
    # quiet machine 2 threads tuned ml-100k 1.7x faster.
    threads: int | None = Field(1, ge=1, description="torch CPU threads while training; None: torch's default.")


class ProjectionHead:
    """``apply(v) = normalize(v + v @ weight + bias)``; all-zero rows (no text) stay zero.

    ``weight`` is (d, d), ``bias`` (d,), both float32. ``ProjectionHead.identity(d)`` changes nothing.
    """

    def __init__(self, weight: np.ndarray, bias: np.ndarray, *, meta: dict[str, Any] | None = None) -> None:
        weight = np.ascontiguousarray(weight, dtype=np.float32)
        bias = np.ascontiguousarray(bias, dtype=np.float32)
        if weight.ndim != 2 or weight.shape[0] != weight.shape[1] or bias.shape != (weight.shape[0],):
            raise DataError(
                f"ProjectionHead needs a square (d, d) weight and a (d,) bias; got {weight.shape} and {bias.shape}."
            )
        if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
            raise DataError("ProjectionHead: the weight or bias holds NaN or infinite values; train it again.")
        self.weight = weight
        self.bias = bias
        self.meta: dict[str, Any] = dict(meta or {})

    @classmethod
    def identity(cls, dim: int) -> ProjectionHead:
        return cls(np.zeros((dim, dim), dtype=np.float32), np.zeros(dim, dtype=np.float32))

    @property
    def dim(self) -> int:
        return int(self.weight.shape[0])

    def __repr__(self) -> str:
        return f"ProjectionHead(dim={self.dim}, fingerprint={self.fingerprint()!r})"

    def fingerprint(self) -> str:
        """A short hash of the arrays: the tuned encoder's name carries it, so caches never mix heads."""
        digest = hashlib.sha256(self.weight.tobytes())
        digest.update(self.bias.tobytes())
        return digest.hexdigest()[:12]

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """Head-applied unit float32 rows; rows that are all zero (users without text) stay zero."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise DataError(f"ProjectionHead.apply: vectors of shape {vectors.shape}; expected (n, {self.dim}).")
        empty = ~vectors.any(axis=1)
        out = unit_rows(vectors + vectors @ self.weight + self.bias)
        out[empty] = 0.0
        return out

    # ------------------------------------------------------------------------------------------ arrays
    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"weight.npy": self.weight, "bias.npy": self.bias}

    def to_json(self) -> str:
        payload = {
            "format": _FORMAT,
            "version": _VERSION,
            "dim": self.dim,
            "fingerprint": self.fingerprint(),
            **self.meta,
        }
        return json.dumps(payload, indent=2, sort_keys=True, default=float)

    def save(self, folder: str | Path) -> Path:
        """``weight.npy``, ``bias.npy`` and ``head.json`` in ``folder`` (created)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, array in self.to_arrays().items():
            np.save(folder / name, array, allow_pickle=False)
        (folder / "head.json").write_text(self.to_json(), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ProjectionHead:
        """A head saved by :meth:`save` (no pickle); its arrays must match the fingerprint in ``head.json``."""
        folder = Path(folder)
        missing = [name for name in HEAD_FILES if not (folder / name).is_file()]
        if missing:
            raise DataError(f"{folder}: not a saved projection head (missing {', '.join(missing)}).")
        try:
            meta = json.loads((folder / "head.json").read_text(encoding="utf-8"))
            weight = np.load(folder / "weight.npy", allow_pickle=False)
            bias = np.load(folder / "bias.npy", allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise DataError(f"{folder}: the projection head cannot be read ({exc}); train it again.") from None
        if meta.get("format") != _FORMAT or meta.get("version") != _VERSION:
            raise DataError(
                f"{folder}/head.json: format {meta.get('format')!r} version {meta.get('version')!r}; "
                f"expected {_FORMAT!r} version {_VERSION}."
            )
        extra = {k: v for k, v in meta.items() if k not in ("format", "version", "dim", "fingerprint")}
        head = cls(weight, bias, meta=extra)
        if meta.get("fingerprint") != head.fingerprint():
            raise DataError(
                f"{folder}: the head's arrays do not match the fingerprint in head.json "
                f"({head.fingerprint()} vs {meta.get('fingerprint')}); the files were changed. Train it again."
            )
        return head


class TunedEncoder:
    """Any text encoder followed by a :class:`ProjectionHead`: ``encode(texts) = head.apply(encoder.encode(texts))``.

    Its ``name`` carries the head's fingerprint, so a cache keyed by name never mixes tuned and untuned
    vectors; wrap the *base* encoder in a :class:`CachedEncoder` to cache the expensive part.
    """

    def __init__(self, encoder: Encoder, head: ProjectionHead) -> None:
        if head.dim != encoder.dim:
            raise ConfigError(
                f"TunedEncoder: the head is {head.dim}-d but the encoder {encoder.name!r} gives "
                f"{encoder.dim}-d vectors."
            )
        self.encoder = encoder
        self.head = head

    def __repr__(self) -> str:
        return f"TunedEncoder({self.encoder!r}, {self.head!r})"

    @property
    def name(self) -> str:
        return f"{self.encoder.name}+head-{self.head.fingerprint()}"

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def encode(
        self, texts: Sequence[TextInput], *, batch_size: int | None = None, show_progress: bool | None = None
    ) -> np.ndarray:
        base = self.encoder.encode(texts, batch_size=batch_size, show_progress=show_progress)
        return self.head.apply(base)


# ------------------------------------------------------------------------------------------------ training
def _pairs(
    matrix: sp.csr_matrix, n_users: int, has_text: np.ndarray, item_pairs: bool, rng: np.random.Generator
) -> np.ndarray:
    """(n, 2) rows of the stacked [users; items] vectors: (user, item taken) for users with text, and
    (item, another item of the same user) — each user's items in a seeded random order, each paired with the next."""
    coo = matrix.tocoo()
    keep = has_text[coo.row]
    pairs = [np.stack([coo.row[keep], n_users + coo.col[keep]], axis=1)]
    if item_pairs:
        for u in range(matrix.shape[0]):
            items = matrix.indices[matrix.indptr[u] : matrix.indptr[u + 1]]
            if len(items) < 2:
                continue
            order = n_users + rng.permutation(items)
            pairs.append(np.stack([order[:-1], order[1:]], axis=1))
    return np.concatenate(pairs).astype(np.int64)


class _AdamW:
    """AdamW on a few tensors (decoupled weight decay, as torch.optim.AdamW). Written out because importing
    torch.optim pulls in torch._dynamo, ~3 s per process on 2 cores, for two arrays that need none of it."""

    def __init__(
        self, params: list[Any], *, lr: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.999)
    ) -> None:
        import torch

        self.params = params
        self.lr, self.weight_decay, self.betas = lr, weight_decay, betas
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0

    def step(self) -> None:
        """One update from the gradients, which are then cleared."""
        import torch

        self.t += 1
        b1, b2 = self.betas
        with torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v, strict=True):
                if p.grad is None:
                    continue
                p.mul_(1 - self.lr * self.weight_decay)
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                denom = (v / (1 - b2**self.t)).sqrt_().add_(1e-8)
                p.addcdiv_(m, denom, value=-self.lr / (1 - b1**self.t))
                p.grad = None


def tune_head(
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    matrix: sp.spmatrix,
    config: TuneConfig | None = None,
    *,
    seed: int = 0,
    show_progress: bool | None = None,
) -> tuple[ProjectionHead, dict[str, Any]]:
    """Train a head on ``matrix`` (users x items; any non-zero is "taken") with users' and items' text vectors.

    Users whose vector is all zero (no text) give only item-item pairs. Returns the head (the epoch with the
    lowest held-out loss) and its evidence: pairs, epochs run, the train and held-out loss per epoch (held-out
    at epoch 0 = the untrained, identity head), the best epoch, seconds and the device.
    """
    import torch

    config = config or TuneConfig()
    previous = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        return _train(
            users_in=user_vectors,
            items_in=item_vectors,
            matrix=matrix,
            config=config,
            seed=seed,
            show_progress=show_progress,
        )
    finally:
        torch.set_num_threads(previous)


def _train(
    *,
    users_in: np.ndarray,
    items_in: np.ndarray,
    matrix: sp.spmatrix,
    config: TuneConfig,
    seed: int,
    show_progress: bool | None,
) -> tuple[ProjectionHead, dict[str, Any]]:
    import torch

    users = np.asarray(users_in, dtype=np.float32)
    items = np.asarray(items_in, dtype=np.float32)
    matrix = sp.csr_matrix(matrix)
    if users.ndim != 2 or items.ndim != 2 or users.shape[1] != items.shape[1]:
        raise DataError(f"tune_head: user vectors {users.shape} and item vectors {items.shape} must be (n, d), same d.")
    if matrix.shape != (len(users), len(items)):
        raise DataError(
            f"tune_head: the matrix is {matrix.shape} but there are {len(users)} user and {len(items)} item vectors."
        )
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    pairs = _pairs(matrix, len(users), np.asarray(users.any(axis=1)), config.item_pairs, rng)
    if len(pairs) > config.max_pairs:
        pairs = pairs[rng.choice(len(pairs), config.max_pairs, replace=False)]
    pairs = pairs[rng.permutation(len(pairs))]
    n_held = max(1, round(config.holdout * len(pairs)))
    if len(pairs) - n_held < 2:
        raise DataError(f"tune_head: {len(pairs)} pairs from the interactions; at least 3 are needed to train.")
    held, train = pairs[:n_held], pairs[n_held:]

    device = resolve_device(
        config.device, usable=torch.cuda.is_available(), where="tune_head", what="torch sees no GPU"
    )
    dim = users.shape[1]
    vectors = torch.from_numpy(np.vstack([users, items])).to(device)
    weight = torch.zeros(dim, dim, device=device, requires_grad=True)
    bias = torch.zeros(dim, device=device, requires_grad=config.bias)
    params = [weight, bias] if config.bias else [weight]
    optimiser = _AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(seed)

    def project(rows: torch.Tensor) -> torch.Tensor:
        v = vectors[rows]
        return torch.nn.functional.normalize(v + v @ weight + bias, dim=1)

    def loss_of(batch: torch.Tensor) -> torch.Tensor:
        a, b = project(batch[:, 0]), project(batch[:, 1])
        logits = a @ b.T / config.temperature
        # A popular item (or an active user) appears more than once in a batch: such a copy is another positive,
        # not a negative, so it is left out of the softmax rather than pushed away.
        twins = (batch[:, :1] == batch[:, 0]) | (batch[:, 1:] == batch[:, 1])
        twins.fill_diagonal_(False)
        logits = logits.masked_fill(twins, float("-inf"))
        target = torch.arange(len(batch), device=device)
        return (
            torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target)
        ) / 2

    train_t = torch.from_numpy(train).to(device)
    held_t = torch.from_numpy(held).to(device)

    def held_loss() -> float:
        # in batches of the training size, so the number of negatives matches training
        with torch.no_grad():
            losses = [
                float(loss_of(held_t[i : i + config.batch_size])) * len(held_t[i : i + config.batch_size])
                for i in range(0, len(held_t), config.batch_size)
                if len(held_t[i : i + config.batch_size]) > 1
            ]
            return sum(losses) / max(1, len(held_t))

    best_loss = held_loss()
    held_curve = [best_loss]
    train_curve: list[float] = []
    best = (weight.detach().clone(), bias.detach().clone(), 0)
    stale = 0
    steps = (len(train_t) + config.batch_size - 1) // config.batch_size
    with progress_bar(
        config.epochs, "tuning the text head", want_progress(show_progress, len(train)), unit="epochs (at most)"
    ) as tick:
        for _ in range(config.epochs):
            order = torch.randperm(len(train_t), generator=generator).to(device)
            total = 0.0
            for s in range(steps):
                batch = train_t[order[s * config.batch_size : (s + 1) * config.batch_size]]
                if len(batch) < 2:
                    continue
                loss = loss_of(batch)
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(batch)
            train_curve.append(total / len(train_t))
            held_curve.append(held_loss())
            tick(1)
            if held_curve[-1] < best_loss - 1e-5:
                best_loss = held_curve[-1]
                best = (weight.detach().clone(), bias.detach().clone(), len(train_curve))
                stale = 0
            else:
                stale += 1
                if stale >= config.patience:
                    break
    evidence: dict[str, Any] = {
        "pairs": {"train": len(train), "held_out": len(held)},
        "epochs": len(train_curve),
        "best_epoch": best[2],
        "train_loss": [round(x, 5) for x in train_curve],
        "held_out_loss": [round(x, 5) for x in held_curve],
        "seconds": round(time.perf_counter() - started, 3),
        "device": device,
        "seed": seed,
        "config": config.model_dump(mode="json"),
    }
    head = ProjectionHead(
        best[0].cpu().numpy(),
        best[1].cpu().numpy(),
        meta={"tuning": {k: v for k, v in evidence.items() if k not in ("train_loss", "held_out_loss")}},
    )
    return head, evidence
