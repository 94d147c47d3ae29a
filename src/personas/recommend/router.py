"""ColdStartRouter: one recommender for every amount of history.

- no history: profile -> side features -> a ridge regression from side features to items (attribute-conditioned
  popularity, :class:`~personas.recommend.side.SideRidge`), plus group-popular on the user's likely groups
  (:class:`~personas.recommend.placement.GroupPlacer`: the group label given to ``fit``; else the nearest group
  centroid of the user's vector; else a vote of the users with the most similar side text), plus content;
- a few interactions (fewer than ``min_history``): a blend of the warm model, item neighbours, popularity,
  content and group-popular, with weights chosen per history size;
- enough history: the warm model (EASE or Hybrid).

Every weight and the switch point are chosen inside ``fit`` on users of the training data whose history is
hidden, by NDCG@10 -- never on anyone's test data (:mod:`personas.recommend.router_tuning`). Scores of the
parts are z-normalised per user before they are blended.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from personas.data import Dataset, ProfileConfig, build_profiles, split_negation
from personas.recommend._rows import last_call, read_only
from personas.recommend.base import FitInputs, NewUser, Recommender, normalise_rows, split_group_part
from personas.recommend.content import ContentBased
from personas.recommend.ease import EASE
from personas.recommend.feature_cf import FeatureCF, fill_cold_items
from personas.recommend.hybrid import Hybrid
from personas.recommend.neighbours import ItemKNN
from personas.recommend.placement import GroupPlacer
from personas.recommend.popular import GroupPopular
from personas.recommend.router_config import ColdStartRouterConfig
from personas.recommend.router_tuning import (
    FEW_PARTS,
    choose_cold_item_scale,
    choose_cold_weights,
    choose_few_weights,
    choose_profile_weight,
    choose_text_weight,
    known_user_split,
    profile_sample,
    text_peer_votes,
    weights_for,
)
from personas.recommend.side import SideRidge, SideText
from personas.recommend.text_match import TextMatch

__all__ = ["FEW_PARTS", "ColdStartRouter", "ColdStartRouterConfig", "Route"]

Route = Literal["cold", "few", "warm"]


def _query_key(query: NewUser) -> tuple[Any, ...]:
    """What a new user's scores depend on, as a hashable value (the history is binary: its columns say it all)."""
    vector = None if query.vector is None else (query.vector.dtype.str, query.vector.shape, query.vector.tobytes())
    history = query.history if isinstance(query.history, sp.csr_matrix) else sp.csr_matrix(query.history)
    return query.text, vector, history.shape, np.sort(history.indices).tobytes(), query.group


def _total(parts: dict[str, np.ndarray]) -> np.ndarray:
    """The sum of a route's weighted parts, in their order (the first as it is); the score of every route."""
    values = list(parts.values())
    total = values[0]
    for part in values[1:]:
        total = total + part
    return total


class ColdStartRouter(Recommender):
    """Routes each user by the size of their history; see the module docstring.

    ``fit(dataset, groups=None, *, user_vectors=None, centroids=None, item_vectors=None)``: vectors and
    group centroids come as arrays (the pipeline encodes text; recommend never does).
    """

    Config = ColdStartRouterConfig
    config: ColdStartRouterConfig

    def _make_warm(self) -> Recommender:
        cfg = self.config
        return EASE(cfg.ease) if cfg.warm == "ease" else Hybrid(cfg.hybrid)

    def _refit_parts(self, data: Dataset, labels: np.ndarray | None) -> dict[str, Recommender]:
        """The few route's collaborative parts fitted on ``data`` (content reads item vectors only: no
        interaction of anyone is in them)."""
        cfg = self.config
        parts = {
            "warm": self._make_warm().fit(data, groups=labels),
            "item_knn": ItemKNN(cfg.item_knn).fit(data, groups=labels),
            "content": self.content_,
            "group": GroupPopular(cfg.group_popular).fit(data, groups=labels),
        }
        if self.text_match_ is not None:
            parts["text"] = self.text_match_  # item texts only, like content
        return parts

    def _fit(self, inputs: FitInputs) -> None:
        dataset, groups, item_vectors, centroids = inputs.dataset, inputs.groups, inputs.item_vectors, inputs.centroids
        cfg = self.config
        self.warm_: Recommender = self._make_warm().fit(dataset, groups=groups)
        self.item_knn_ = ItemKNN(cfg.item_knn).fit(dataset, groups=groups)
        self.group_popular_ = GroupPopular(cfg.group_popular).fit(dataset, groups=groups)
        self.content_ = ContentBased(cfg.content).fit(dataset, groups=groups, item_vectors=item_vectors)
        self.cold_items_ = (
            FeatureCF(cfg.cold_items).fit(
                dataset, item_vectors=item_vectors, item_text_vectors=inputs.item_text_vectors
            )
            if cfg.cold_items is not None and (self.popularity_ == 0).any()
            else None
        )
        self.side_ = SideText(cfg.max_side_terms)
        side_binary = self.side_.fit(build_profiles(dataset, ProfileConfig(parts=("text", "demographics"))))
        self.placer_ = self.group_popular_.group_placer().with_side(
            centroids=None if centroids is None or not len(centroids) else normalize(centroids),
            user_vectors=inputs.user_vectors,
            side=self.side_,
            neighbours=cfg.text_neighbours,
        )
        cold = choose_cold_weights(cfg, dataset, groups, self.placer_, side_binary, self._cold_content_rows)
        self.cold_weights_ = np.array(cold, dtype=np.float64)
        # the items' texts in the users' text space: a cold user's words count through TextMatch
        self.text_match_: TextMatch | None = None
        self.text_weight_, self.text_weight_trials_ = 0.0, np.zeros((3, 0))
        # A text can be a wish ("space operas") or a profile ("a 24-year-old technician"); what users of this
        # dataset write about themselves (side_vectors) gets its own weight, chosen on their real items.
        self.profile_weight_, self.profile_weight_trials_ = -1.0, np.zeros((3, 0))  # -1: no profiles seen
        self.peer_weight_ = 0.0  # and the items of users who wrote alike (their rows: profile_rows_)
        self.profile_rows_, self.profiles_ = np.zeros(0, dtype=np.int64), np.zeros((0, 0))
        if inputs.item_text_vectors is not None:
            self.text_match_ = TextMatch(cfg.text_match).fit(
                dataset, user_vectors=inputs.user_vectors, item_text_vectors=inputs.item_text_vectors
            )
            self.text_weight_, self.text_weight_trials_ = choose_text_weight(
                cfg, dataset, groups, self.placer_, side_binary, self._cold_content_rows, cold, self.text_match_
            )
            if inputs.side_vectors is not None:
                self.profile_rows_, self.profiles_ = profile_sample(
                    inputs.side_vectors, self.seen_, cfg.cold_validation_users, cfg.seed
                )
                self.profile_weight_, self.peer_weight_, self.profile_weight_trials_ = choose_profile_weight(
                    cfg,
                    dataset,
                    groups,
                    self.placer_,
                    side_binary,
                    self._cold_content_rows,
                    cold,
                    self.text_match_,
                    inputs.side_vectors,
                )
        active = np.flatnonzero(np.diff(self.seen_.indptr) > 0)
        self.side_ridge_ = SideRidge().fit(side_binary[active], self.seen_[active], float(self.cold_weights_[0]))
        # the known-user split serves the switch point (tuned when not fixed) and the new-item fill's scale
        # (tuned when there are new items); it costs a refit of the parts, so only when one of them needs it
        switch = cfg.tune_few and cfg.min_history is None
        fill = cfg.tune_cold_item_scale and self.cold_items_ is not None
        known = known_user_split(cfg, dataset, groups, self._refit_parts) if switch or fill else None
        few = choose_few_weights(cfg, dataset, groups, self._refit_parts, known, with_text=self.text_match_ is not None)
        self.few_shots_, self.few_table_, self.min_history_, self.switch_gains_ = few
        scale: tuple[float, np.ndarray] = (cfg.cold_item_scales[0], np.zeros((2, 0)))  # (scale, trials)
        if self.cold_items_ is not None:
            scale = choose_cold_item_scale(cfg, known, few, item_vectors, inputs.item_text_vectors)
        self.cold_item_scale_, self.cold_item_scale_trials_ = scale

    # -- routing -------------------------------------------------------------------------------------
    def route_of(self, n_history: int) -> Route:
        if n_history == 0:
            return "cold"
        return "few" if n_history < self.min_history_ else "warm"

    def few_weights_for(self, n_history: int) -> dict[str, float]:
        """The few route's weights for a history of this size (those of the largest tuned N <= it)."""
        return weights_for(self.few_shots_, self.few_table_, n_history)

    def group_weights(self, *, side: sp.csr_matrix | None = None, vector: np.ndarray | None = None) -> np.ndarray:
        """How likely someone with no history belongs to each group (sums to 1, or all 0 when unknown): with a
        vector and centroids the nearest centroid, else the side-text vote (see :class:`GroupPlacer`)."""
        return self.placer_.weights(side=side, vector=vector)

    def group_of(self, *, side: sp.csr_matrix | None = None, vector: np.ndarray | None = None) -> int:
        """The most likely group of someone with no history; -1 when nothing points to one."""
        weights = self.group_weights(side=side, vector=vector)
        return int(np.argmax(weights)) if weights.any() else -1

    def group_of_text(self, text: str) -> int:
        """The most likely group of someone with no history, from their profile text; -1 if none."""
        return self.group_of(side=self.side_.vector(text))

    def group_placer(self) -> GroupPlacer:
        return self.placer_

    def reads_text_vectors(self) -> bool:
        return self.text_match_ is not None

    def _because(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        # the part that links items on the user's route: the warm model on the warm route
        part = self.warm_ if self.route_of(len(history)) == "warm" else self.item_knn_
        return part._because(history, items)

    def _matched_words(self, text: str, items: np.ndarray) -> list[tuple[str, ...]]:
        return (
            self.text_match_.matched_words(text, items)
            if self.text_match_ is not None
            else super()._matched_words(text, items)
        )

    def why(self, user_row: int) -> Route:
        """Which route a known user takes."""
        return self.route_of(int(np.diff(self.seen_.indptr)[user_row]))

    # -- scoring -------------------------------------------------------------------------------------
    def _cold_parts(
        self,
        side_binary: sp.csr_matrix,
        weights: np.ndarray,
        content: np.ndarray | None,
        vector: np.ndarray | None = None,
        text: str | None = None,
    ) -> dict[str, np.ndarray]:
        """The cold route's weighted parts: side ridge (attribute-conditioned popularity), group-popular on the
        likely groups, content, and what the user's words (``vector``, their text in the language-model
        space) mean; their sum is the score."""
        gp = self.group_popular_
        _, group_weight, content_weight = self.cold_weights_
        parts: dict[str, np.ndarray] = {}
        if side_binary.nnz == 0 and weights.any():
            # No side words: the ridge would only repeat global popularity, which group-popular already
            # shrinks toward; the group (given, or from a vector) is all there is.
            parts["group"] = normalise_rows((weights @ gp.group_scores_).reshape(1, -1))[0]
        else:
            parts["side"] = normalise_rows(self.side_ridge_.scores(side_binary).reshape(1, -1))[0]
            if group_weight:
                group = weights @ gp.group_scores_ if weights.any() else gp.global_rate_
                parts["group"] = group_weight * normalise_rows(group.reshape(1, -1))[0]
        if content is not None and content_weight:
            parts["content"] = content_weight * normalise_rows(content.reshape(1, -1))[0]
        if self.text_match_ is not None and self.text_match_.fits(vector):
            assert vector is not None
            weight = self.text_weight_of(vector, text)
            if weight:
                words = self.text_match_.vector_scores(vector.reshape(1, -1))
                parts["text"] = weight * normalise_rows(words)[0]
            if self.peer_weight_ and self.reads_as_profile(vector, text):
                unit = vector.reshape(1, -1) / max(float(np.linalg.norm(vector)), 1e-12)
                votes = text_peer_votes(unit, self.profiles_, self.profile_rows_, self.seen_, self.config.peer_k)
                if votes.any():
                    parts["peers"] = self.peer_weight_ * normalise_rows(votes)[0]
        return parts

    def reads_as_profile(self, vector: np.ndarray, text: str | None = None) -> bool:
        """Whether a text vector is nearer to what this dataset's users wrote about themselves (their side
        texts, sampled at fit) than to the items' texts: then it is a profile, not a wish. A text that rules
        something out ("anything but horror") is a wish: its vector points away from items on purpose."""
        if not self.profiles_.size or self.text_match_ is None:
            return False
        if text is not None and split_negation(text)[1]:
            return False
        key = (vector.dtype.str, vector.shape, vector.tobytes())
        memo = last_call(self, "reads_as_profile")  # recommending, then explaining, asks twice
        if memo.key == key:
            return bool(memo.value)
        answer = self._reads_as_profile(vector)
        memo.key, memo.value = key, answer
        return answer

    def _reads_as_profile(self, vector: np.ndarray) -> bool:
        assert self.text_match_ is not None
        unit = vector / max(float(np.linalg.norm(vector)), 1e-12)
        k = 10
        to_items = np.sort(self.text_match_.item_vectors_ @ unit)[-k:].mean()
        to_profiles = np.sort(self.profiles_ @ unit)[-k:].mean()
        return bool(to_profiles > to_items)

    def text_weight_of(self, vector: np.ndarray, text: str | None = None) -> float:
        """The cold route's weight of a text vector (and its text, when known): the profile weight for a
        profile-like text (when the dataset had side texts), else the weight of a typed wish."""
        if self.profile_weight_ >= 0 and self.reads_as_profile(vector, text):
            return self.profile_weight_
        return self.text_weight_

    @staticmethod
    def _few_parts(parts: dict[str, np.ndarray], weights: dict[str, float]) -> dict[str, np.ndarray]:
        """The few route's weighted parts (z-normalised per user); their sum is the score."""
        return {name: weight * normalise_rows(parts[name]) for name, weight in weights.items() if weight}

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        counts = np.diff(self.seen_.indptr)[user_rows]
        out = np.empty((len(user_rows), self.n_items_))
        warm = counts >= self.min_history_
        if warm.any():
            out[warm] = self.warm_.score_rows(user_rows[warm])
        for n in np.unique(counts[(counts > 0) & ~warm]).tolist():
            few = counts == n
            rows = user_rows[few]
            labels = self.group_popular_.labels_[rows].copy()
            for i, row in enumerate(rows):
                if labels[i] < 0:
                    labels[i] = self.group_popular_.group_of_history(self.seen_[row])
            weights = self.few_weights_for(n)
            parts = {
                "warm": self.warm_.score_rows(rows) if weights["warm"] else np.zeros((len(rows), self.n_items_)),
                "item_knn": self.item_knn_.score_rows(rows),
                "popular": np.tile(self.popularity_, (len(rows), 1)),
                "content": self.content_.score_rows(rows),
                "group": self.group_popular_.group_score_block(labels),
            }
            if self.text_match_ is not None:
                parts["text"] = self.text_match_.score_histories(self.seen_[rows])
            out[few] = _total(self._few_parts(parts, weights))
        for i in np.flatnonzero(counts == 0).tolist():
            out[i] = self._score_cold_row(int(user_rows[i]))
        return fill_cold_items(out, self.cold_items_, self.seen_[user_rows], scale=self.cold_item_scale_)

    def _cold_content_rows(self, rows: np.ndarray) -> np.ndarray:
        """Content scores of known users from what is known besides behaviour (their side text or vector)."""
        vectors = self.placer_.user_vectors[rows] if self.placer_.user_vectors.size else None
        return self.content_.known_only_by([str(self.side_.texts_[r]) for r in rows], vectors)

    def _score_cold_row(self, row: int) -> np.ndarray:
        placer = self.placer_
        content = self._cold_content_rows(np.array([row]))[0]
        binary = self.side_.binary_of([str(self.side_.texts_[row])])
        weights = placer.known_user_weight(row, placer.labels, placer.default_voters())
        vector = placer.user_vectors[row] if placer.user_vectors.size else None
        return _total(self._cold_parts(binary, weights, content if content.any() else None, vector))

    def _score_new(self, query: NewUser) -> np.ndarray:
        scores = _total(self._route_parts(query)).reshape(1, -1)
        return fill_cold_items(scores, self.cold_items_, query.history, scale=self.cold_item_scale_)[0]

    def _contributions(self, query: NewUser) -> dict[str, np.ndarray]:
        parts = {name: np.asarray(part).ravel() for name, part in self._route_parts(query).items()}
        if "group" in parts:  # what the group adds over everyone; what everyone likes is popularity
            parts["group"], everyone = split_group_part(parts["group"], self.group_popular_.global_rate_)
            parts["popular"] = parts.get("popular", 0.0) + everyone
        vector = self.text_match_.query_vector(query) if self.text_match_ is not None else None
        if "text" in parts and vector is not None:
            # The text part is weight * z(meaning + prior), and z is linear once the row's mean and spread are
            # fixed: split it into its two terms, so that popularity is not credited to the words.
            assert self.text_match_ is not None
            meaning, prior = (term.ravel() for term in self.text_match_.vector_parts(vector))
            spread = np.std(meaning + prior)
            if spread > 0:
                route = self.route_of(query.n_history)
                weight = (
                    self.few_weights_for(query.n_history)["text"]
                    if route == "few"
                    else self.text_weight_of(vector[0], query.text)
                )
                parts["text"] = weight * (meaning - meaning.mean()) / spread
                parts["popular"] = parts.get("popular", 0.0) + weight * (prior - prior.mean()) / spread
        if self.cold_items_ is not None and query.n_history:  # items nobody took: FeatureCF speaks for them
            parts["new_item"] = np.where(self.popularity_ == 0, np.inf, -np.inf)
        return parts

    def _route_parts(self, query: NewUser) -> dict[str, np.ndarray]:
        """The weighted parts of a new user's route (few route: 1 x items each); their sum is the score.
        Kept per thread for the last user asked about, read-only: explaining follows recommending."""
        key = _query_key(query)
        memo = last_call(self, "route_parts")
        if memo.key == key:
            return dict(memo.value)
        parts = {name: read_only(part) for name, part in self._compute_route_parts(query).items()}
        memo.key, memo.value = key, parts
        return dict(parts)

    def _compute_route_parts(self, query: NewUser) -> dict[str, np.ndarray]:
        route = self.route_of(query.n_history)
        if route == "warm":
            return {"warm": self.warm_.score_new(query)}
        # Content reads text only in its TF-IDF space and vectors only in the space of its item vectors.
        vector_fits = (
            query.vector is not None
            and not self.content_.uses_text
            and query.vector.shape == (self.content_.item_vectors_.shape[1],)
        )
        content_query = NewUser(
            query.text if self.content_.uses_text else None,
            query.vector if vector_fits else None,
            query.history,
            None,
        )
        content = (
            self.content_.score_new(content_query)
            if content_query.text or content_query.vector is not None or query.n_history
            else None
        )
        if route == "few":
            group = query.group if query.group is not None else self.group_popular_.group_of_history(query.history)
            assert content is not None
            parts = {
                "warm": self.warm_.score_new(query).reshape(1, -1),
                "item_knn": self.item_knn_.score_new(query).reshape(1, -1),
                "popular": self.popularity_.reshape(1, -1),
                "content": content.reshape(1, -1),
                "group": self.group_popular_.group_score_block(np.array([group])),
            }
            if self.text_match_ is not None:  # their words when they typed some, else what their items mean
                parts["text"] = self.text_match_.score_new(query).reshape(1, -1)
            return self._few_parts(parts, self.few_weights_for(query.n_history))
        counts = self.side_.counts([query.text]) if query.text else sp.csr_matrix((1, len(self.side_.terms_)))
        binary = sp.csr_matrix(counts > 0, dtype=np.float64)
        if query.group is not None:
            return self._cold_parts(binary, self.placer_.one_hot(query.group), content, query.vector, query.text)
        # The side text's TF-IDF row only when the placer reads it (not when the vector finds the nearest centroid).
        side = None if self.placer_.reads_vector(query.vector) else self.side_.tfidf(counts)
        weights = self.group_weights(side=side, vector=query.vector)
        return self._cold_parts(binary, weights, content, query.vector, query.text)

    # -- persistence ---------------------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {
            "user_vectors": self.placer_.user_vectors,
            "centroids": self.placer_.centroids,
            "cold_weights": self.cold_weights_,
            "few_shots": self.few_shots_,
            "few_table": self.few_table_,
            "min_history": np.array(self.min_history_, dtype=np.int64),
            "switch_gains": self.switch_gains_,
            "cold_item_scale": np.array(self.cold_item_scale_, dtype=np.float64),
            "cold_item_scale_trials": self.cold_item_scale_trials_,
            "text_weight": np.array(self.text_weight_),
            "text_weight_trials": self.text_weight_trials_,
            "profile_weight": np.array(self.profile_weight_),
            "profile_weight_trials": self.profile_weight_trials_,
            "profiles": self.profiles_,
            "profile_rows": self.profile_rows_,
            "peer_weight": np.array(self.peer_weight_),
        }
        out.update({f"side.{key}": value for key, value in self.side_.state().items()})
        out.update({f"side_ridge.{key}": value for key, value in self.side_ridge_.state().items()})
        return out

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        def prefixed(name: str) -> dict[str, np.ndarray]:
            return {k.removeprefix(f"{name}."): v for k, v in arrays.items() if k.startswith(f"{name}.")}

        self.cold_weights_ = arrays["cold_weights"]
        self.few_shots_ = arrays["few_shots"]
        self.few_table_ = arrays["few_table"]
        self.min_history_ = int(arrays["min_history"])
        self.switch_gains_ = arrays["switch_gains"]
        self.cold_item_scale_ = float(arrays["cold_item_scale"])
        self.cold_item_scale_trials_ = arrays["cold_item_scale_trials"]
        self.text_weight_ = float(arrays["text_weight"])
        self.text_weight_trials_ = arrays["text_weight_trials"]
        self.profile_weight_ = float(arrays["profile_weight"])
        self.profile_weight_trials_ = arrays["profile_weight_trials"]
        self.profiles_ = arrays["profiles"]
        self.profile_rows_ = arrays["profile_rows"]
        self.peer_weight_ = float(arrays["peer_weight"])
        self.side_ = SideText.from_state(prefixed("side"), self.config.max_side_terms)
        self.side_ridge_ = SideRidge.from_state(prefixed("side_ridge"))
        self._saved = arrays  # the placer is rebuilt with the restored parts (_set_parts)

    def _parts(self) -> dict[str, Recommender]:
        parts: dict[str, Recommender] = {
            "warm": self.warm_,
            "item_knn": self.item_knn_,
            "group_popular": self.group_popular_,
            "content": self.content_,
        }
        if self.cold_items_ is not None:
            parts["cold_items"] = self.cold_items_
        if self.text_match_ is not None:
            parts["text_match"] = self.text_match_
        return parts

    def _new_parts(self) -> dict[str, Recommender]:
        cfg = self.config
        parts: dict[str, Recommender] = {
            "warm": self._make_warm(),
            "item_knn": ItemKNN(cfg.item_knn),
            "group_popular": GroupPopular(cfg.group_popular),
            "content": ContentBased(cfg.content),
        }
        if cfg.cold_items is not None and any(k.startswith("cold_items.") for k in self._saved):
            parts["cold_items"] = FeatureCF(cfg.cold_items)
        if any(k.startswith("text_match.") for k in self._saved):
            parts["text_match"] = TextMatch(cfg.text_match)
        return parts

    def _set_parts(self, parts: dict[str, Recommender]) -> None:
        self.warm_ = parts["warm"]
        self.item_knn_ = parts["item_knn"]  # type: ignore[assignment]
        self.group_popular_ = parts["group_popular"]  # type: ignore[assignment]
        self.content_ = parts["content"]  # type: ignore[assignment]
        self.cold_items_ = parts.get("cold_items")  # type: ignore[assignment]
        self.text_match_ = parts.get("text_match")  # type: ignore[assignment]
        saved = self.__dict__.pop("_saved")
        self.placer_ = self.group_popular_.group_placer().with_side(
            centroids=saved["centroids"],
            user_vectors=saved["user_vectors"],
            side=self.side_,
            neighbours=self.config.text_neighbours,
        )
