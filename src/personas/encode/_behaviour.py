"""User vectors from behaviour (what users interacted with), and their fusion with text vectors."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Self

import numpy as np
import scipy.sparse as sp

from personas.config import ComponentConfig, registry
from personas.encode._base import BaseEncoder, Encoder, as_vectors, config_of, resolve_config, unit_rows
from personas.encode._cache import CachedEncoder
from personas.encode._config import BehaviourConfig, FusionConfig
from personas.encode._onnx import OnnxEncoder
from personas.encode._tfidf import TfidfEncoder
from personas.errors import ConfigError, DataError, NotFittedError

if TYPE_CHECKING:  # the data layer (pandas) is imported only when behaviour is actually fitted
    from personas.data import Dataset, ProfileConfig

__all__ = ["BehaviourEncoder", "FusionEncoder", "fitted_text_encoder", "fuse"]

History = Mapping[str, float] | Sequence[str]


def fitted_text_encoder(encoder: Encoder, texts: Sequence[str | None]) -> Encoder:
    """A text encoder ready to encode: an unfitted TF-IDF encoder (e.g. one built from a config), also inside a
    cache, is fitted on the texts it is about to encode; every other encoder is used as it is."""
    inner = encoder.encoder if isinstance(encoder, CachedEncoder) else encoder
    if isinstance(inner, TfidfEncoder) and not hasattr(inner, "components_"):
        inner.fit(texts)
    return encoder


class BehaviourEncoder(BaseEncoder):
    """User vectors from interactions alone, for users the dataset knows and for new histories.

    Methods
    -------
    ``"svd"`` (default): truncated SVD of the user x item matrix. Each item column is weighted by its
    inverse popularity (log(n_users / n_users_of_item)), so the first dimensions describe taste rather than
    how many popular films a user saw; rows are L2-normalised before the SVD so heavy users do not dominate.
    ``"item-text"``: the (rating-)weighted mean of the items' text vectors from ``text_encoder``; puts users
    in the same space as text, and works for items nobody else has interacted with.

    Build it from a :class:`BehaviourConfig` or its fields: ``BehaviourEncoder(64)`` is
    ``BehaviourEncoder(n_components=64)``; also method, value ("rating" weights items by the rating given, falling
    back to binary without ratings; or "binary"), seed (of the randomised SVD). ``text_encoder`` (for
    "item-text") is an encoder object; ``make_encoder(BehaviourConfig(...))`` builds it from its config first.

    After ``fit(dataset)``: ``vectors_`` (n_users, dim) unit rows in user-row order; users without any
    interaction get the mean direction of all users (an "average user").
    """

    def __init__(
        self,
        config: BehaviourConfig | int | None = None,
        /,
        *,
        text_encoder: Encoder | None = None,
        **params: Any,
    ) -> None:
        if isinstance(text_encoder, ComponentConfig):
            raise ConfigError(
                "BehaviourEncoder takes a text_encoder object; build it with make_encoder(BehaviourConfig("
                "method='item-text', text_encoder=...)) to start from configs."
            )
        self._config = resolve_config("BehaviourEncoder", BehaviourConfig, config, "n_components", params)
        if text_encoder is None and self._config.text_encoder is not None:
            raise ConfigError(
                "BehaviourEncoder got a config with a text_encoder config but no text_encoder object; build it with "
                "make_encoder(config), which builds the text encoder first."
            )
        self.text_encoder: Encoder | None = text_encoder

    @property
    def config(self) -> BehaviourConfig:
        """This encoder's config, its text encoder described by that encoder's own config."""
        return self._config.model_copy(update={"text_encoder": config_of(self.text_encoder, "BehaviourEncoder")})

    def __repr__(self) -> str:
        return f"BehaviourEncoder({self._config!r})"

    def _check_params(self) -> None:
        if self._config.method == "item-text" and self.text_encoder is None:
            raise ConfigError(
                "BehaviourEncoder(method='item-text') needs a text_encoder, e.g. "
                "BehaviourEncoder(method='item-text', text_encoder=OnnxEncoder())."
            )

    def _weights(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        """Rows as fitted: items scaled by the fitted inverse popularity, rows L2-normalised (``svd`` only)."""
        matrix = sp.csr_matrix(matrix, dtype=np.float64)
        if self._config.method == "svd":
            matrix = sp.csr_matrix(matrix @ sp.diags(self.item_weights_))
            norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
            matrix = sp.csr_matrix(sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ matrix)
        return matrix

    def fit(self, dataset: Dataset) -> Self:
        """Learn the item space from ``dataset`` and the vectors of its users."""
        self._check_params()
        if dataset.n_interactions == 0:
            raise DataError(f"BehaviourEncoder.fit: dataset {dataset.name!r} has no interactions.")
        value: Literal["rating", "binary"] = (
            "rating" if self._config.value == "rating" and dataset.has_ratings else "binary"
        )
        self.value_ = value
        self.n_users_ = dataset.n_users
        self.item_vocab_ = dataset.item_vocab
        raw_matrix = dataset.matrix(value)
        users_per_item = np.diff(raw_matrix.tocsc().indptr)
        self.item_weights_ = np.log((1.0 + dataset.n_users) / (1.0 + users_per_item)) + 1.0
        matrix = self._weights(raw_matrix)
        digest = hashlib.sha256(dataset.fingerprint().encode())
        cfg = self._config
        if cfg.method == "svd":
            from sklearn.decomposition import TruncatedSVD

            dim = min(cfg.n_components, dataset.n_items - 1, dataset.n_users - 1)
            if dim < 1:
                raise DataError(
                    f"BehaviourEncoder.fit: a {dataset.n_users} x {dataset.n_items} matrix is too small for an SVD."
                )
            if dim < cfg.n_components:
                warnings.warn(
                    f"BehaviourEncoder: n_components={cfg.n_components} reduced to {dim} "
                    f"({dataset.n_users} users x {dataset.n_items} items).",
                    UserWarning,
                    stacklevel=2,
                )
            svd = TruncatedSVD(n_components=dim, algorithm="randomized", n_iter=7, random_state=cfg.seed)
            svd.fit(matrix)
            self.item_vectors_ = svd.components_.T.astype(np.float64)  # items x dim
            digest.update(self.item_vectors_.tobytes())
            label = f"svd{dim}"
        else:
            from personas.data import item_texts as data_item_texts

            assert self.text_encoder is not None
            item_texts = data_item_texts(dataset, "label")
            self.item_vectors_ = (
                fitted_text_encoder(self.text_encoder, item_texts).encode(item_texts).astype(np.float64)
            )
            digest.update(self.text_encoder.name.encode())
            label = f"itemtext[{self.text_encoder.name}]"
        raw = matrix @ self.item_vectors_
        centre = unit_rows(unit_rows(raw).mean(axis=0, keepdims=True), fallback=np.eye(1, raw.shape[1])[0])[0]
        self.empty_vector_ = centre
        self.vectors_ = unit_rows(raw, fallback=centre)
        self.dim_ = int(self.vectors_.shape[1])
        self.name_ = f"behaviour-{label}:{value}@{digest.hexdigest()[:12]}"
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "vectors_"):
            raise NotFittedError("This BehaviourEncoder is not fitted yet. Call fit(dataset) first.")

    @property
    def name(self) -> str:
        self._check_fitted()
        return self.name_

    @property
    def dim(self) -> int:
        self._check_fitted()
        return self.dim_

    def encode_histories(self, histories: Sequence[History]) -> np.ndarray:
        """Vectors for new users from their histories: a list of item ids, or ``{item_id: rating}``.

        Item ids the fitted dataset does not know are ignored (with one warning that counts them); a user
        left with no known item gets the average-user vector.
        """
        self._check_fitted()
        n_items = len(self.item_vocab_)
        rows, cols, vals = [], [], []
        unknown = 0
        for u, history in enumerate(histories):
            if isinstance(history, str):
                raise DataError(
                    f"BehaviourEncoder.encode_histories: history {u} is a str; pass a list of item ids "
                    "or a {item_id: rating} mapping."
                )
            pairs = history.items() if isinstance(history, Mapping) else ((item, 1.0) for item in history)
            for item, rating in pairs:
                if item not in self.item_vocab_:
                    unknown += 1
                    continue
                rows.append(u)
                cols.append(self.item_vocab_.row(item))
                vals.append(float(rating) if self.value_ == "rating" else 1.0)
        if unknown:
            warnings.warn(
                f"BehaviourEncoder.encode_histories: ignored {unknown} interaction(s) with items the "
                "fitted dataset does not know.",
                UserWarning,
                stacklevel=2,
            )
        matrix = sp.csr_matrix((vals, (rows, cols)), shape=(len(histories), n_items), dtype=np.float64)
        matrix.sum_duplicates()
        return unit_rows(self._weights(matrix) @ self.item_vectors_, fallback=self.empty_vector_)


def fuse(text_vectors: np.ndarray, behaviour_vectors: np.ndarray, *, text_weight: float = 0.5) -> np.ndarray:
    """One unit vector per user from a text vector and a behaviour vector.

    The parts are scaled by sqrt(w) and sqrt(1 - w) and concatenated, so for unit inputs the cosine of two
    fused vectors is exactly ``w * cos(text) + (1 - w) * cos(behaviour)``: the weight means what it says.
    """
    if not 0.0 <= text_weight <= 1.0:
        raise ConfigError(
            f"The 'text_weight' parameter of fuse must be a float in [0, 1]. Got {text_weight!r} instead."
        )
    text = as_vectors(text_vectors)
    behaviour = as_vectors(behaviour_vectors)
    if len(text) != len(behaviour):
        raise DataError(
            f"fuse: {len(text)} text vectors but {len(behaviour)} behaviour vectors; pass one of each "
            "per user, in the same order."
        )
    joined = np.hstack([np.sqrt(text_weight) * text, np.sqrt(1.0 - text_weight) * behaviour])
    return unit_rows(joined)


class FusionEncoder(BaseEncoder):
    """Text and behaviour in one vector per user (the "cross-feature" representation).

    ``fit(dataset)`` builds each user's profile text (``personas.data.build_profiles``) unless ``texts`` are
    given, encodes them with ``text_encoder``, fits ``behaviour_encoder`` and fuses both with
    :func:`fuse`. ``vectors_`` holds the result in user-row order.

    Build it from its parts: ``FusionEncoder(text_encoder, behaviour_encoder, text_weight=0.5,
    profile_config=None)`` where each encoder is an object (default: the fast MiniLM path and
    ``BehaviourEncoder()``) and ``profile_config`` a ``personas.data.ProfileConfig``; or from a
    :class:`FusionConfig` with ``make_encoder(config)``, which builds the parts first.
    """

    def __init__(
        self,
        text_encoder: Encoder | None = None,
        behaviour_encoder: BehaviourEncoder | None = None,
        /,
        *,
        text_weight: float = 0.5,
        profile_config: ProfileConfig | Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(text_encoder, ComponentConfig) or isinstance(behaviour_encoder, ComponentConfig):
            raise ConfigError(
                "FusionEncoder takes encoder objects; build one from configs with make_encoder(FusionConfig(...))."
            )
        if profile_config is not None and not isinstance(profile_config, Mapping):
            profile_config = profile_config.model_dump(mode="json")
        profile = None if profile_config is None else dict(profile_config)
        self._config = FusionConfig(text_weight=text_weight, profile=profile)
        self.text_encoder: Encoder = text_encoder if text_encoder is not None else OnnxEncoder()
        self.behaviour_encoder = behaviour_encoder

    @property
    def config(self) -> FusionConfig:
        """This encoder's config, its parts described by their own configs."""
        behaviour = self.behaviour_encoder.config if self.behaviour_encoder is not None else BehaviourConfig()
        return self._config.model_copy(
            update={"text_encoder": config_of(self.text_encoder, "FusionEncoder"), "behaviour": behaviour}
        )

    @property
    def text_weight(self) -> float:
        return self._config.text_weight

    def __repr__(self) -> str:
        return f"FusionEncoder({self.text_encoder!r}, {self.behaviour_encoder!r}, text_weight={self.text_weight})"

    def fit(
        self,
        dataset: Dataset,
        *,
        texts: Sequence[str | None] | None = None,
        show_progress: bool | None = None,
        batch_size: int | None = None,
    ) -> Self:
        if texts is None:
            from personas.data import ProfileConfig, build_profiles

            profile = self._config.profile
            texts = build_profiles(dataset, None if profile is None else ProfileConfig.model_validate(profile))
        if len(texts) != dataset.n_users:
            raise DataError(
                f"FusionEncoder.fit: {len(texts)} texts for {dataset.n_users} users; pass one text per user row."
            )
        behaviour = self.behaviour_encoder or BehaviourEncoder()
        behaviour.fit(dataset)
        text_vectors = fitted_text_encoder(self.text_encoder, texts).encode(
            texts, batch_size=batch_size, show_progress=show_progress
        )
        self.behaviour_encoder_ = behaviour
        self.text_vectors_ = text_vectors
        self.vectors_ = fuse(text_vectors, behaviour.vectors_, text_weight=self.text_weight)
        self.name_ = f"fusion[{self.text_encoder.name}|{behaviour.name}]:w{self.text_weight:g}"
        return self

    @property
    def name(self) -> str:
        if not hasattr(self, "vectors_"):
            raise NotFittedError("This FusionEncoder is not fitted yet. Call fit(dataset) first.")
        return self.name_

    @property
    def dim(self) -> int:
        if not hasattr(self, "vectors_"):
            raise NotFittedError("This FusionEncoder is not fitted yet. Call fit(dataset) first.")
        return int(self.vectors_.shape[1])

    def encode_new(self, texts: Sequence[str | None], histories: Sequence[History]) -> np.ndarray:
        """Fused vectors for new users from their text and their history (either may be empty)."""
        if not hasattr(self, "vectors_"):
            raise NotFittedError("This FusionEncoder is not fitted yet. Call fit(dataset) first.")
        return fuse(
            self.text_encoder.encode(texts),
            self.behaviour_encoder_.encode_histories(histories),
            text_weight=self.text_weight,
        )


registry.register(BehaviourEncoder, BehaviourConfig)
registry.register(FusionEncoder, FusionConfig)
