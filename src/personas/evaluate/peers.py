"""Peer models from other libraries, wrapped as personas Recommenders so they run in the same experiment.

:class:`LightFMPeer` wraps LightFM (the ``lightfm-next`` fork, installed with ``pip install personas[peers]``)
with optional user features (demographic attributes) and item features (genres, release decade). It scores
every user row from its features, so users or items without interactions still get scores from their side
information: the harness scores its rows directly (``uses_side_information``) instead of the new-user path.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from personas.config import ComponentConfig
from personas.data import Dataset, genre_tokens
from personas.errors import ConfigError, DataError
from personas.recommend.base import FitInputs, NewUser, Recommender
from personas.recommend.neighbours import similarity_vote

__all__ = [
    "LightFMConfig",
    "LightFMPeer",
    "TextUserKNN",
    "TextUserKNNConfig",
    "item_feature_tokens",
    "user_feature_tokens",
]


class LightFMConfig(ComponentConfig):
    kind: ClassVar[str] = "lightfm"
    no_components: int = Field(32, ge=1)
    loss: Literal["warp", "bpr", "logistic", "warp-kos"] = "warp"
    epochs: int = Field(20, ge=1)
    learning_rate: float = Field(0.05, gt=0)
    item_alpha: float = Field(0.0, ge=0)
    user_alpha: float = Field(0.0, ge=0)
    user_features: bool = True
    item_features: bool = True
    identity: bool = Field(True, description="Also give every user and item its own feature (pure CF part).")
    seed: int = 0


def _age_bucket(value: object) -> str | None:
    try:
        age = int(float(str(value)))
    except ValueError:
        return None
    return f"age:{min(age // 10 * 10, 60)}"


def user_feature_tokens(dataset: Dataset) -> list[list[str]]:
    """Per user row: demographic tokens (age decade, gender, occupation) from the users table."""
    users = dataset.users
    out: list[list[str]] = [[] for _ in range(dataset.n_users)]
    for col in ("gender", "occupation"):
        if col in users:
            for r, v in enumerate(users[col]):
                if isinstance(v, str) and v:
                    out[r].append(f"{col}:{v}")
    if "age" in users:
        for r, v in enumerate(users["age"]):
            token = _age_bucket(v) if not pd.isna(v) else None
            if token:
                out[r].append(token)
    return out


def item_feature_tokens(dataset: Dataset) -> list[list[str]]:
    """Per item row: genre tokens and the release decade from the items table."""
    items = dataset.items
    out: list[list[str]] = [[] for _ in range(dataset.n_items)]
    for r, genres in enumerate(genre_tokens(dataset)):
        out[r] += [f"genre:{g}" for g in genres]
    if "release_year" in items:
        for r, v in enumerate(items["release_year"]):
            try:
                out[r].append(f"decade:{int(float(str(v))) // 10 * 10}")
            except ValueError:
                continue
    return out


def _feature_matrix(tokens: list[list[str]], identity: bool) -> sp.csr_matrix:
    """Rows = entities; columns = [identity |] tokens; each row sums to 1 (LightFM averages features)."""
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for r, toks in enumerate(tokens):
        for t in toks:
            rows.append(r)
            cols.append(vocab.setdefault(t, len(vocab)))
    n = len(tokens)
    feats = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, len(vocab)))
    if identity or feats.shape[1] == 0:
        feats = sp.hstack([sp.identity(n, format="csr"), feats], format="csr")
    sums = np.asarray(feats.sum(axis=1)).ravel()
    sums[sums == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / sums) @ feats, dtype=np.float32)


class LightFMPeer(Recommender):
    """LightFM (hybrid matrix factorisation) with demographic user features and genre/decade item features."""

    Config = LightFMConfig
    config: LightFMConfig
    uses_side_information: ClassVar[bool] = True

    def _fit(self, inputs: FitInputs) -> None:
        dataset = inputs.dataset
        try:
            from lightfm import LightFM
        except ImportError:  # pragma: no cover - depends on the environment
            raise ConfigError(
                "LightFMPeer needs the 'lightfm' package: pip install 'personas[peers]' (lightfm-next)."
            ) from None
        cfg = self.config
        user_tokens = user_feature_tokens(dataset) if cfg.user_features else [[] for _ in range(dataset.n_users)]
        item_tokens = item_feature_tokens(dataset) if cfg.item_features else [[] for _ in range(dataset.n_items)]
        uf = _feature_matrix(user_tokens, cfg.identity or not cfg.user_features)
        itf = _feature_matrix(item_tokens, cfg.identity or not cfg.item_features)
        model = LightFM(
            no_components=cfg.no_components,
            loss=cfg.loss,
            learning_rate=cfg.learning_rate,
            item_alpha=cfg.item_alpha,
            user_alpha=cfg.user_alpha,
            random_state=np.random.RandomState(cfg.seed),
        )
        # One thread: LightFM's Hogwild updates are only reproducible single-threaded.
        model.fit(
            sp.coo_matrix(self.seen_, dtype=np.float32),
            user_features=uf,
            item_features=itf,
            epochs=cfg.epochs,
            num_threads=1,
        )
        u_bias, u_emb = model.get_user_representations(uf)
        i_bias, i_emb = model.get_item_representations(itf)
        self.user_embeddings_ = np.asarray(u_emb, dtype=np.float64)
        self.user_biases_ = np.asarray(u_bias, dtype=np.float64)
        self.item_embeddings_ = np.asarray(i_emb, dtype=np.float64)
        self.item_biases_ = np.asarray(i_bias, dtype=np.float64)

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        emb = self.user_embeddings_[user_rows]
        return emb @ self.item_embeddings_.T + self.item_biases_[None, :] + self.user_biases_[user_rows, None]

    def _state(self) -> dict[str, np.ndarray]:
        return {
            "user_embeddings": self.user_embeddings_,
            "user_biases": self.user_biases_,
            "item_embeddings": self.item_embeddings_,
            "item_biases": self.item_biases_,
        }

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.user_embeddings_ = arrays["user_embeddings"]
        self.user_biases_ = arrays["user_biases"]
        self.item_embeddings_ = arrays["item_embeddings"]
        self.item_biases_ = arrays["item_biases"]


class TextItemKNNConfig(ComponentConfig):
    kind: ClassVar[str] = "text_item_knn"
    k: int = 100

    def model_post_init(self, _context: object) -> None:
        if self.k < 1:
            raise ConfigError(f"The 'k' parameter of TextItemKNN must be an int >= 1. Got {self.k!r} instead.")


class TextItemKNN(Recommender):
    """Sentence-embedding item-kNN (a peer): each item's ``k`` nearest items by the cosine of their texts in
    the language-model space (``item_text_vectors``); a user's score for an item is the summed similarity of
    the items they took. It needs no interaction to relate items, so it ranks new items too."""

    Config = TextItemKNNConfig
    config: TextItemKNNConfig

    def _fit(self, inputs: FitInputs) -> None:
        if inputs.item_text_vectors is None:
            raise DataError("TextItemKNN.fit: needs item_text_vectors (the items' texts, encoded).")
        from sklearn.preprocessing import normalize

        from personas.recommend.neighbours import top_k_per_row

        vectors = normalize(inputs.item_text_vectors).astype(np.float32)
        blocks = []
        for start in range(0, len(vectors), 1024):  # one block of rows at a time: n x n never in memory
            sims = vectors[start : start + 1024] @ vectors.T
            rows = np.arange(start, start + len(sims))
            sims[rows - start, rows] = 0.0  # an item is not its own neighbour
            blocks.append(top_k_per_row(sp.csr_matrix(np.where(sims > 0, sims, 0.0)), self.config.k))
        self.similarity_ = sp.vstack(blocks).tocsr().astype(np.float64)

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        return self._score_histories(self.seen_[user_rows])

    def _score_histories(self, history: sp.csr_matrix) -> np.ndarray:
        return np.asarray((history @ self.similarity_).todense())

    def _score_new(self, query: NewUser) -> np.ndarray:
        if query.n_history == 0:
            return self.fallback_scores(1)[0]
        return self._score_histories(query.history)[0]

    def _state(self) -> dict[str, np.ndarray]:
        s = self.similarity_
        return {"data": s.data, "indices": s.indices, "indptr": s.indptr}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        n = len(arrays["indptr"]) - 1
        self.similarity_ = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=(n, n))


class ItemDemoKNNConfig(ComponentConfig):
    kind: ClassVar[str] = "item_demo_knn"
    k: int = 100  # item neighbours
    shrink: float = 10.0
    users: int = 50  # users with the most similar side text that vote
    weight: float = 1.0  # of the users' vote beside the item neighbours (both z-normalised per user)

    def model_post_init(self, _context: object) -> None:
        for name in ("k", "users"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"The {name!r} parameter of ItemDemoKNN must be an int >= 1. Got {getattr(self, name)!r} instead."
                )
        if self.weight < 0 or self.shrink < 0:
            raise ConfigError("The 'weight' and 'shrink' parameters of ItemDemoKNN must be floats >= 0.")


class ItemDemoKNN(Recommender):
    """Item-kNN + demographic-kNN popularity (a peer): the items like the ones a user took, blended with what
    the known users whose side text (demographics, own words) is most like theirs took. A new user with
    words and no items gets the users' vote alone; with items and no words, the item neighbours alone."""

    Config = ItemDemoKNNConfig
    config: ItemDemoKNNConfig

    def _fit(self, inputs: FitInputs) -> None:
        from personas.data import ProfileConfig, build_profiles
        from personas.recommend import ItemKNN
        from personas.recommend.side import SideText

        cfg = self.config
        self.items_ = ItemKNN(k=cfg.k, shrink=cfg.shrink).fit(inputs.dataset)
        self.side_ = SideText()
        self.side_.fit(build_profiles(inputs.dataset, ProfileConfig(parts=("text", "demographics"))))
        self.voters_ = np.diff(self.seen_.indptr) > 0

    def _vote(self, sides: sp.csr_matrix) -> np.ndarray:
        """What the ``users`` known users nearest to each side-text row took, weighted by similarity."""
        out = np.zeros((sides.shape[0], self.n_items_))
        if sides.shape[1] != self.side_.vectors_.shape[1] or not self.voters_.any():
            return out
        sims = np.asarray((sides @ self.side_.vectors_.T).todense())
        sims[:, ~self.voters_] = 0.0
        k = min(self.config.users, int(self.voters_.sum()))
        return similarity_vote(sims, np.arange(sims.shape[1]), self.seen_, k)

    def _blend(self, history: sp.csr_matrix, sides: sp.csr_matrix) -> np.ndarray:
        from personas.recommend import normalise_rows

        items = normalise_rows(np.asarray((history @ self.items_.similarity_).todense()))
        return items + self.config.weight * normalise_rows(self._vote(sides))

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        return self._blend(self.seen_[user_rows], self.side_.vectors_[user_rows])

    def _score_new(self, query: NewUser) -> np.ndarray:
        side = self.side_.vector(query.text) if query.text else sp.csr_matrix((1, self.side_.vectors_.shape[1]))
        if query.n_history == 0 and side.nnz == 0:
            return self.fallback_scores(1)[0]
        return self._blend(query.history, side)[0]

    def _state(self) -> dict[str, np.ndarray]:
        return {f"side.{key}": value for key, value in self.side_.state().items()}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        from personas.recommend.side import SideText

        side = {k.removeprefix("side."): v for k, v in arrays.items() if k.startswith("side.")}
        self.side_ = SideText.from_state(side, 2000)
        self.voters_ = np.diff(self.seen_.indptr) > 0

    def _parts(self) -> dict[str, Recommender]:
        return {"items": self.items_}

    def _new_parts(self) -> dict[str, Recommender]:
        from personas.recommend import ItemKNN

        return {"items": ItemKNN(k=self.config.k, shrink=self.config.shrink)}

    def _set_parts(self, parts: dict[str, Recommender]) -> None:
        from personas.recommend import ItemKNN

        items = parts["items"]
        assert isinstance(items, ItemKNN)
        self.items_ = items


class TextUserKNNConfig(ComponentConfig):
    kind: ClassVar[str] = "text_user_knn"
    k: int = 50  # the known users whose side text is most like the new user's, who vote
    encoder: str = "minilm"  # the pretrained sentence encoder of the side texts (a make_encoder kind)

    def model_post_init(self, _context: object) -> None:
        if self.k < 1:
            raise ConfigError(f"The 'k' parameter of TextUserKNN must be an int >= 1. Got {self.k!r} instead.")


class TextUserKNN(Recommender):
    """Sentence-vector user-kNN over side text (a peer): every known user's side text (own text, reviews, tags,
    demographics sentence; never their items) is encoded by a pretrained sentence encoder; a new user's score
    for an item is the similarity-weighted vote of the ``k`` known users whose side text is most like theirs.
    With demographics only, it is a demographic-sentence user-kNN; with tags only, a tag-text user-kNN. A user
    without side text, or with none like anyone's, gets global popularity."""

    Config = TextUserKNNConfig
    config: TextUserKNNConfig

    def _encoder(self) -> Any:
        """The side-text encoder, its vectors cached under PERSONAS_HOME/embeddings (tests override this)."""
        holder: list[Any] = self.__dict__.setdefault("_encoders", [])
        if not holder:
            from personas.config import get_settings
            from personas.encode import CachedEncoder, EmbeddingCache, make_encoder

            holder.append(
                CachedEncoder(make_encoder(self.config.encoder), EmbeddingCache(get_settings().home / "embeddings"))
            )
        return holder[0]

    def _encode(self, texts: list[str]) -> np.ndarray:
        from sklearn.preprocessing import normalize

        vectors = np.asarray(self._encoder().encode(texts, show_progress=False), dtype=np.float64)
        return np.asarray(normalize(vectors))

    def _fit(self, inputs: FitInputs) -> None:
        from personas.data import ProfileConfig, build_profiles

        texts = build_profiles(inputs.dataset, ProfileConfig(parts=("text", "reviews", "tags", "demographics")))
        # Voters: known users (with train items) who wrote or told something; the others cannot be matched.
        has_items = np.diff(self.seen_.indptr) > 0
        rows = np.array([r for r, t in enumerate(texts) if t and has_items[r]], dtype=np.int64)
        self.voter_rows_ = rows
        self.voter_vectors_ = self._encode([texts[r] for r in rows]) if len(rows) else np.zeros((0, 0))

    def _vote(self, vectors: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
        """Similarity-weighted items of the ``k`` voters nearest each (unit) vector; zero rows where none is."""
        out = np.zeros((len(vectors), self.n_items_))
        if not len(self.voter_rows_) or vectors.shape[1] != self.voter_vectors_.shape[1]:
            return out
        sims = vectors @ self.voter_vectors_.T
        if exclude is not None:  # a known user is not their own neighbour
            sims[exclude[:, None] == self.voter_rows_[None, :]] = -np.inf
        return similarity_vote(sims, self.voter_rows_, self.seen_, self.config.k)

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        # Known users are scored by their neighbours' vote too (voters only; others get popularity).
        out = self.fallback_scores(len(user_rows))
        position = {int(r): j for j, r in enumerate(self.voter_rows_)}
        mine = [j for j, r in enumerate(user_rows) if int(r) in position]
        if mine:
            rows = np.asarray(user_rows)[mine]
            votes = self._vote(self.voter_vectors_[[position[int(r)] for r in rows]], exclude=rows)
            has = votes.any(axis=1)
            out[np.asarray(mine)[has]] = votes[has]
        return out

    def _score_new(self, query: NewUser) -> np.ndarray:
        # The side text is encoded here, by this model's own encoder, so the vote never mixes two spaces.
        if not query.text or not len(self.voter_rows_):
            return self.fallback_scores(1)[0]
        vote = self._vote(self._encode([query.text]))[0]
        return vote if vote.any() else self.fallback_scores(1)[0]

    def _state(self) -> dict[str, np.ndarray]:
        return {"voter_rows": self.voter_rows_, "voter_vectors": self.voter_vectors_}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.voter_rows_ = arrays["voter_rows"]
        self.voter_vectors_ = arrays["voter_vectors"]
