"""What the endpoints do, over the library: a run folder (personas, map, recommender) plus the database.

Users of the run are served by the saved recommender; users created through the API are served by its
new-user path (the cold-start router routes them by how many items they have taken). Events recorded for
any user are excluded from their next recommendations and, for new users, feed the router.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from personas.api.errors import FieldError, NotFoundError
from personas.api.schemas import (
    EventsOut,
    ItemOut,
    ItemPage,
    ItemRef,
    MapOut,
    Member,
    NewUserOut,
    PersonaBrief,
    PersonaDetail,
    PersonaPage,
    Reason,
    Recommendation,
    RecommendationsOut,
    UserPersonaOut,
)
from personas.api.settings import ServeSettings
from personas.api.storage import Storage, storable
from personas.describe import Persona
from personas.encode import encode_query
from personas.errors import DataError
from personas.pipeline import RunArtefact, load_run
from personas.recommend import Recommendations, Recommender, history_row, reason_phrases

__all__ = ["PersonaService"]


def _brief(persona: Persona) -> PersonaBrief:
    return PersonaBrief(
        group=persona.group,
        name=persona.name,
        display_name=persona.display_name,
        size=persona.size,
        share=persona.share,
        keywords=[k.term for k in persona.keywords[:6]],
    )


class PersonaService:
    """Loaded once per app: the verified run folder, its recommender and the storage."""

    def __init__(self, settings: ServeSettings, storage: Storage | None = None) -> None:
        self.settings = settings
        self.artefact: RunArtefact = load_run(settings.model_dir)
        names = list(self.artefact.manifest.get("models", []))
        name = settings.model_name or ("router" if "router" in names else None)
        self.model: Recommender = self.artefact.model(name)
        self.model_name = name or ("hybrid" if "hybrid" in names else (names[-1] if names else "?"))
        self.storage = storage if storage is not None else Storage(settings.resolved_database_url())
        self.storage.create_schema()

        users = self.artefact.users
        self.user_ids = users["user_id"].astype(str).to_numpy()
        self.user_persona = users["persona"].to_numpy(dtype=np.int64)
        self.user_xy = users[["x", "y"]].to_numpy(dtype=np.float64)
        self.user_row = {uid: i for i, uid in enumerate(self.user_ids.tolist())}
        self.personas = {p.group: p for p in self.artefact.personas}
        items = self.artefact.items
        self.item_ids: list[str] = items["item_id"].astype(str).tolist()
        self.item_titles: list[str] = items["title"].astype(str).tolist()
        if self.item_ids != [str(i) for i in self.model.item_vocab_.ids]:
            raise DataError(f"{settings.model_dir}: items.parquet and the model's items differ; the run is damaged.")
        self.item_row = {iid: i for i, iid in enumerate(self.item_ids)}
        # What a person reads for an item: its title, or its id where the data has no title.
        self.item_labels = [
            title if title.strip() else iid for iid, title in zip(self.item_ids, self.item_titles, strict=True)
        ]
        self.item_lower = [t.lower() for t in self.item_titles]
        self.popularity = np.asarray(self.model.popularity_, dtype=np.int64)
        self.popular_order = np.argsort(-self.popularity, kind="stable")
        self.distinctive: dict[str, list[int]] = {}
        for p in self.artefact.personas:
            for d in p.distinctive_items:
                self.distinctive.setdefault(d.item_id, []).append(p.group)
        self.model_row = {uid: i for i, uid in enumerate(str(u) for u in self.model.user_vocab_.ids)}
        self.centroids = self.artefact.text_centroids()
        # New users' text is placed in the run's text space; their items by the model's groups.
        placer = self.model.group_placer()
        self.placer = placer.with_side(centroids=self.centroids) if placer is not None else None
        self._encoder: Any | None = None
        self._encoder_lock = threading.Lock()
        self._encoder_loaded = False

    # -- helpers -------------------------------------------------------------------------------------
    def _encoder_or_none(self) -> Any | None:
        """The run's text encoder, loaded on first use (None for TF-IDF runs)."""
        with self._encoder_lock:
            if not self._encoder_loaded:
                self._encoder = self.artefact.text_encoder() if self.centroids is not None else None
                self._encoder_loaded = True
        return self._encoder

    def _check_n(self, n: int) -> int:
        if n > self.settings.max_n:
            raise FieldError("n", f"must be at most {self.settings.max_n}. Got {n} instead.")
        return n

    def _check_items(self, items: Sequence[str], field: str) -> list[int]:
        if len(items) > self.settings.max_items:
            raise FieldError(field, f"holds at most {self.settings.max_items} item ids. Got {len(items)} instead.")
        rows = []
        for item in items:
            row = self.item_row.get(item)
            if row is None:
                raise NotFoundError("item", item, "in this run")
            rows.append(row)
        return rows

    def _persona_brief(self, group: int | None) -> PersonaBrief | None:
        persona = self.personas.get(group) if group is not None else None
        return _brief(persona) if persona is not None else None

    def _route(self, n_history: int) -> Any:
        return self.model.route_of(n_history)

    def _explain(
        self,
        user_id: str,
        rec: Recommendations,
        history: np.ndarray,
        persona: int | None,
        n: int,
        text: str | None = None,
        vector: np.ndarray | None = None,
    ) -> RecommendationsOut:
        ids = [int(i) for i in rec.ids[0] if i >= 0][:n]
        scores = rec.scores[0][: len(ids)]
        route = self._route(len(history))
        reasons = self.model.explain(ids, history=history, group=persona, text=text, vector=vector)
        items = []
        for item, score, why in zip(ids, scores, reasons, strict=True):
            ref = None
            if why.because_of >= 0:
                source = why.because_of
                ref = ItemRef.model_construct(item_id=self.item_ids[source], title=self.item_titles[source])
            phrases = reason_phrases(why, self.item_labels.__getitem__, lambda g: self.personas[g].display_name)
            # model_construct: the values come from the run and the model, typed already (hot path).
            reason = Reason.model_construct(persona=why.group, because_of=ref, text="; ".join(phrases))
            items.append(
                Recommendation.model_construct(
                    item_id=self.item_ids[item], title=self.item_titles[item], score=float(score), reason=reason
                )
            )
        persona_out = persona if persona is not None and persona >= 0 else None
        return RecommendationsOut(user_id=user_id, persona=persona_out, route=route, history=len(history), items=items)

    def _place(self, text: str | None, vector: np.ndarray | None, history: np.ndarray) -> int:
        """The persona of a new user: their text's nearest persona centroid, else their items, else their
        text's most similar run users (side text), else -1 (see GroupPlacer)."""
        if self.placer is None:
            return -1
        return self.placer.place(text=text, vector=vector, history=history_row(history, len(self.item_ids)))

    def _recommend_new(
        self, user_id: str, text: str | None, vector: np.ndarray | None, history: np.ndarray, persona: int, n: int
    ) -> RecommendationsOut:
        rec = self.model.recommend_new(
            text=text,
            vector=vector,
            history=[self.item_ids[r] for r in history],
            group=persona if persona >= 0 else None,
            n=n,
        )
        return self._explain(user_id, rec, history, persona, n, text, vector)

    def examples(self) -> dict[str, str]:
        """Examples for the dashboard's fields, from this run: a user of the run, its two most popular item
        ids, and the keywords of its largest persona."""
        largest = max(self.personas.values(), key=lambda p: p.size, default=None)
        words = ", ".join(k.term for k in largest.keywords[:3]) if largest is not None else ""
        return {
            "user_id": str(self.user_ids[0]) if len(self.user_ids) else "",
            "item_ids": ", ".join(self.item_ids[int(r)] for r in self.popular_order[:2]),
            "text": words,
        }

    # -- personas ------------------------------------------------------------------------------------
    def list_personas(self, offset: int, limit: int) -> PersonaPage:
        limit = min(limit, self.settings.max_page)
        cards = sorted(self.personas.values(), key=lambda p: p.group)
        page = [_brief(p) for p in cards[offset : offset + limit]]
        return PersonaPage(total=len(cards), offset=offset, limit=limit, items=page)

    def persona(self, group: int) -> PersonaDetail:
        card = self.personas.get(group)
        if card is None:
            raise NotFoundError("persona", str(group), f"in this run (personas are 0..{len(self.personas) - 1})")
        rows = np.flatnonzero(self.user_persona == group)
        if len(rows) > self.settings.members_sample:
            rows = np.sort(np.random.default_rng(group).choice(rows, self.settings.members_sample, replace=False))
        members = [
            Member(user_id=str(self.user_ids[r]), x=float(self.user_xy[r, 0]), y=float(self.user_xy[r, 1]))
            for r in rows
        ]
        return PersonaDetail(card=card, members=members, new_users=self.storage.count_new_users().get(group, 0))

    def persona_map(self, limit: int | None = None) -> MapOut:
        cap = min(limit or self.settings.map_points, self.settings.map_points)
        rows = np.arange(len(self.user_ids))
        if len(rows) > cap:
            rows = np.sort(np.random.default_rng(0).choice(rows, cap, replace=False))
        return MapOut(
            user_id=self.user_ids[rows].tolist(),
            persona=self.user_persona[rows].tolist(),
            x=self.user_xy[rows, 0].round(4).tolist(),
            y=self.user_xy[rows, 1].round(4).tolist(),
            total=len(self.user_ids),
        )

    # -- users ---------------------------------------------------------------------------------------
    def user_persona_of(self, user_id: str) -> UserPersonaOut:
        row = self.user_row.get(user_id)
        stored, events = self.storage.lookup(user_id)
        if row is not None:
            return UserPersonaOut(
                user_id=user_id,
                source="run",
                persona=self._persona_brief(int(self.user_persona[row])),
                x=float(self.user_xy[row, 0]),
                y=float(self.user_xy[row, 1]),
                events=len(events),
            )
        if stored is None:
            raise NotFoundError("user", user_id)
        return UserPersonaOut(
            user_id=user_id, source="api", persona=self._persona_brief(stored.persona), events=len(events)
        )

    def recommendations(self, user_id: str, n: int) -> RecommendationsOut:
        n = self._check_n(n)
        row = self.user_row.get(user_id)
        model_row = self.model_row.get(user_id)
        stored, events = self.storage.lookup(user_id, new_user=row is None)
        extra = np.unique([self.item_row[i] for i in events if i in self.item_row]).astype(np.int64)
        if stored is not None:
            return self._recommend_new(user_id, stored.text, stored.vector, extra, stored.persona, n)
        if row is None or model_row is None:
            raise NotFoundError("user", user_id)
        persona = int(self.user_persona[row])
        indptr, indices = self.model.seen_.indptr, self.model.seen_.indices
        seen = indices[indptr[model_row] : indptr[model_row + 1]].astype(np.int64)
        if extra.size == 0:
            return self._explain(user_id, self.model.recommend([user_id], n), seen, persona, n)
        # Events since the run: the history grows, and what was just taken is not recommended again.
        history = np.union1d(seen, extra)
        return self._recommend_new(user_id, None, None, history, persona, n)

    def create_user(self, text: str | None, items: Sequence[str], n: int, *, owner: str | None = None) -> NewUserOut:
        """Store, place and recommend for a new user; ``owner``: the id of the API key it belongs to."""
        if text is None and not items:
            raise FieldError("body", "needs 'text' or 'items' (or both): say something about the new user.")
        if text is not None and len(text) > self.settings.max_text_chars:
            raise FieldError(
                "body.text", f"holds at most {self.settings.max_text_chars} characters. Got {len(text)} instead."
            )
        n = self._check_n(n)
        rows = self._check_items(items, "body.items")
        history = np.unique(np.asarray(rows, dtype=np.int64))
        vector = None
        encoder = self._encoder_or_none() if text else None
        if encoder is not None and text is not None:
            vector = encode_query(encoder, text).astype(np.float32)  # "..., but no horror" points away
        persona = self._place(text, vector, history)
        user_id = f"new-{uuid.uuid4().hex[:16]}"
        # Everything is computed before the single write, so a failure leaves nothing behind.
        recs = self._recommend_new(user_id, text, vector, history, persona, n)
        self.storage.add_user(user_id, text=text, persona=persona, vector=vector, items=list(items), owner=owner)
        return NewUserOut(user_id=user_id, persona=self._persona_brief(persona), recommendations=recs)

    def add_events(self, user_id: str, items: Sequence[str], kind: str) -> EventsOut:
        rows = self._check_items(items, "body.items")
        stored, events = self.storage.lookup(user_id) if storable(user_id) else (None, [])
        if stored is None and user_id not in self.user_row:
            raise NotFoundError("user", user_id)
        persona: int | None
        if stored is not None:
            known = [self.item_row[i] for i in events if i in self.item_row]
            history = np.unique(np.asarray(known + rows, dtype=np.int64))
            persona = self._place(stored.text, stored.vector, history)
            self.storage.add_events(user_id, items, kind=kind, persona=persona)
        else:
            persona = int(self.user_persona[self.user_row[user_id]])
            self.storage.add_events(user_id, items, kind=kind)
        return EventsOut(
            user_id=user_id,
            recorded=len(items),
            events=len(events) + len(items),
            persona=persona if persona >= 0 else None,
        )

    # -- items ---------------------------------------------------------------------------------------
    def _item_out(self, row: int) -> ItemOut:
        item_id = self.item_ids[row]
        return ItemOut(
            item_id=item_id,
            title=self.item_titles[row],
            popularity=int(self.popularity[row]),
            distinctive_for=sorted(self.distinctive.get(item_id, [])),
        )

    def item(self, item_id: str) -> ItemOut:
        row = self.item_row.get(item_id)
        if row is None:
            raise NotFoundError("item", item_id, "in this run")
        return self._item_out(row)

    def search_items(self, search: str | None, offset: int, limit: int) -> ItemPage:
        """Items whose title (or id) contains ``search`` (case-insensitive), most popular first."""
        limit = min(limit, self.settings.max_page)
        order = self.popular_order
        if search:
            needle = search.lower()
            order = np.array(
                [r for r in order.tolist() if needle in self.item_lower[r] or needle == self.item_ids[r].lower()],
                dtype=np.int64,
            )
        page = [self._item_out(int(r)) for r in order[offset : offset + limit]]
        return ItemPage(total=len(order), offset=offset, limit=limit, items=page)
