"""What the endpoints do, over the library: a run folder (personas, map, recommender) plus the database.

Users of the run are served by the saved recommender; users created through the API are served by its
new-user path (the cold-start router routes them by how many items they have taken). Events recorded for
any user are excluded from their next recommendations and, for new users, feed the router.

A new user's persona is recomputed in the transaction that records their events (under the user's write lock),
so concurrent events cannot overwrite each other's placement. Users of the run are served from the run folder
alone while the database is down (without the events recorded since).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel
from pydantic_core import to_json
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from personas.api.batching import MicroBatcher
from personas.api.errors import ConflictError, FieldError, NotFoundError, UnavailableError, UnknownReferenceError
from personas.api.precomputed import TopLists
from personas.api.schemas import (
    DeletedOut,
    Dependency,
    EventsOut,
    Health,
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
    TreeNode,
    TreeOut,
    UserPersonaOut,
)
from personas.api.settings import ServeSettings
from personas.api.storage import MAX_ID_CHARS, Receipt, Storage, StoredReceipt, StoredUser, storable
from personas.describe import Persona
from personas.encode import encode_queries
from personas.errors import DataError
from personas.pipeline import RunArtefact, load_run
from personas.recommend import Reason as ModelReason
from personas.recommend import Recommendations, Recommender, history_row, reason_phrases

__all__ = ["PersonaService"]

logger = logging.getLogger(__name__)


def _brief(persona: Persona) -> PersonaBrief:
    return PersonaBrief(
        group=persona.group,
        name=persona.name,
        display_name=persona.display_name,
        size=persona.size,
        share=persona.share,
        keywords=[k.term for k in persona.keywords[:6]],
        parent=persona.parent,
        stability=persona.stability,
        unstable=persona.unstable,
    )


class PersonaService:
    """Loaded once per app: the verified run folder, its recommender and the storage."""

    def __init__(self, settings: ServeSettings, storage: Storage | None = None) -> None:
        self.settings = settings
        self.artefact: RunArtefact = load_run(settings.model_dir)
        self._manifest = _stat(Path(settings.model_dir) / "manifest.json")
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
        self.coarse_personas = {p.group: p for p in self.artefact.coarse_personas}  # two-level runs only
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
        # Run users' top-n with reasons, kept ready (see api.precomputed); start() fills them in the background.
        depth = min(settings.precomputed_n, settings.max_n)
        groups = [int(self.user_persona[self.user_row[u]]) if u in self.user_row else -1 for u in self.model_row]
        self.top: TopLists | None = TopLists(self.model, np.asarray(groups), depth) if depth > 0 else None
        self._reason_texts: dict[tuple[int, int | None, str | None], str] = {}
        self._bodies: dict[tuple[int, int], bytes] = {}  # (model row, n) -> JSON body (see _keep_body)
        self._body_bytes = 0
        self.centroids = self.artefact.text_centroids()
        # New users' text is placed in the run's text space; their items by the model's groups.
        placer = self.model.group_placer()
        self.placer = placer.with_side(centroids=self.centroids) if placer is not None else None
        # The encoder is loaded and checked against the manifest now: a mismatch refuses to start, instead of
        # failing the first text request.
        self._encoder: Any | None = _verified_encoder(self.artefact) if self.centroids is not None else None
        self.encoder_error: str | None = None  # set when encoding fails on a request (health reports it)
        # Concurrent requests' texts are encoded in one call; each gets the vector it would get alone.
        self.encode_batcher: MicroBatcher[str, np.ndarray] = MicroBatcher(
            self._encode_texts,
            max_batch=settings.encode_batch_max,
            max_wait_s=settings.encode_batch_wait_ms / 1000,
        )

    def close(self) -> None:
        """Answer the texts waiting to be encoded, then release the database connections."""
        self.encode_batcher.close()
        self.storage.close()

    # -- helpers -------------------------------------------------------------------------------------
    def _encode(self, text: str) -> np.ndarray | None:
        """The text in the run's text space (None for runs without a reusable encoder)."""
        if self._encoder is None:
            return None
        try:
            return self.encode_batcher.submit(text)
        except Exception as exc:  # whatever failed, the client gets no server detail
            logger.exception("The text encoder failed on a request")
            self.encoder_error = type(exc).__name__
            raise UnavailableError(
                "The text encoder failed on this request (the server log has the details); nothing was written. "
                "Retry later, or send items only."
            ) from None

    def _encode_texts(self, texts: list[str]) -> list[np.ndarray]:
        """The batch call behind :meth:`_encode`: "..., but no horror" points away from horror."""
        assert self._encoder is not None
        return list(encode_queries(self._encoder, texts).astype(np.float32))

    def _check_n(self, n: int, field: str) -> int:
        if n > self.settings.max_n:
            raise FieldError(field, f"must be at most {self.settings.max_n}. Got {n} instead.")
        return n

    def _check_items(self, items: Sequence[str], field: str) -> list[int]:
        if len(items) > self.settings.max_items:
            raise FieldError(field, f"holds at most {self.settings.max_items} item ids. Got {len(items)} instead.")
        rows = []
        for item in items:
            row = self.item_row.get(item)
            if row is None:
                raise UnknownReferenceError(field, "item", item)
            rows.append(row)
        return rows

    def _persona_brief(self, group: int | None) -> PersonaBrief | None:
        persona = self.personas.get(group) if group is not None else None
        return _brief(persona) if persona is not None else None

    def _coarse_brief(self, group: int | None) -> PersonaBrief | None:
        """The coarse persona above a (fine) persona, in a two-level run."""
        persona = self.personas.get(group) if group is not None else None
        if persona is None or persona.parent is None or persona.parent not in self.coarse_personas:
            return None
        return _brief(self.coarse_personas[persona.parent])

    def tree(self) -> TreeOut:
        fine = sorted(self.personas.values(), key=lambda p: p.group)
        if not self.coarse_personas:
            return TreeOut(levels=1, roots=[TreeNode(persona=_brief(p), children=[]) for p in fine])
        roots = [
            TreeNode(
                persona=_brief(c),
                children=[_brief(self.personas[g]) for g in c.children if g in self.personas],
            )
            for c in sorted(self.coarse_personas.values(), key=lambda p: p.group)
        ]
        return TreeOut(levels=2, roots=roots)

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
        if vector is not None and (tree := self.artefact.place_text_vector(vector)) is not None:
            return tree[1]  # a top-down run: the nearest coarse persona in the text space, then its nearest child
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
    def _lookup(self, user_id: str, run_user: bool) -> tuple[StoredUser | None, list[str] | None]:
        """The stored new user and the user's events; for a run user while the database is down, (None, None):
        the run folder alone still serves them."""
        try:
            return self.storage.lookup(user_id, new_user=not run_user)
        except SQLAlchemyError as exc:
            if not run_user:
                raise
            logger.warning("Database unavailable (%s): run user served from the run folder only", type(exc).__name__)
            return None, None

    def user_persona_of(self, user_id: str) -> UserPersonaOut:
        row = self.user_row.get(user_id)
        stored, events = self._lookup(user_id, row is not None)
        if row is not None:
            return UserPersonaOut(
                user_id=user_id,
                source="run",
                persona=self._persona_brief(int(self.user_persona[row])),
                coarse_persona=self._coarse_brief(int(self.user_persona[row])),
                x=float(self.user_xy[row, 0]),
                y=float(self.user_xy[row, 1]),
                events=None if events is None else len(events),
            )
        if stored is None or events is None:
            raise NotFoundError("user", user_id)
        return UserPersonaOut(
            user_id=user_id,
            source="api",
            persona=self._persona_brief(stored.persona),
            coarse_persona=self._coarse_brief(stored.persona),
            events=len(events),
        )

    def recommendations(self, user_id: str, n: int) -> RecommendationsOut:
        return self.recommendations_of(user_id, n)[0]

    def recommendations_json(self, user_id: str, n: int) -> tuple[bytes, bool]:
        """:meth:`recommendations_of` as the JSON body: a run user without events since the run is answered from
        their precomputed list (the same answer, without model work or pydantic models); others as before."""
        n = self._check_n(n, "query.n")
        row = self.user_row.get(user_id)
        model_row = self.model_row.get(user_id)
        if self.top is not None and row is not None and model_row is not None:
            try:
                events: list[str] | None = self.storage.events_of(user_id)
            except SQLAlchemyError as exc:  # as in _lookup: the run folder alone still serves run users
                logger.warning(
                    "Database unavailable (%s): run user served from the run folder only", type(exc).__name__
                )
                events = None
            if not events or not any(i in self.item_row for i in events):
                body = self._bodies.get((model_row, n))
                if body is None:
                    answer = self.top.answer(model_row, n)
                    if answer is not None:
                        body = self._json_of(user_id, row, model_row, *answer)
                        self._keep_body((model_row, n), body)
                if body is not None:
                    return body, events is None
        out, degraded = self.recommendations_of(user_id, n)
        return out.model_dump_json().encode(), degraded

    def _json_of(
        self, user_id: str, row: int, model_row: int, ids: np.ndarray, scores: np.ndarray, reasons: list[ModelReason]
    ) -> bytes:
        """The body of RecommendationsOut, field for field, from a precomputed list (see :meth:`_explain`)."""
        item_ids, titles = self.item_ids, self.item_titles
        items = []
        for item, score, why in zip(ids.tolist(), scores.tolist(), reasons, strict=True):
            source = why.because_of
            items.append(
                {
                    "item_id": item_ids[item],
                    "title": titles[item],
                    "score": score,
                    "reason": {
                        "persona": why.group,
                        "because_of": {"item_id": item_ids[source], "title": titles[source]} if source >= 0 else None,
                        "text": self._reason_text(why),
                    },
                }
            )
        persona = int(self.user_persona[row])
        assert self.top is not None
        history = self.top.seen(model_row).size
        body = {
            "user_id": user_id,
            "persona": persona if persona >= 0 else None,
            "route": self._route(history),
            "history": history,
            "items": items,
        }
        return to_json(body)

    def _keep_body(self, key: tuple[int, int], body: bytes) -> None:
        """Keep a run user's answer from their precomputed list: it never changes (the list, once filled, is
        fixed; events since the run take the other path), so the next request for it is a lookup. Bounded by
        ``body_cache_bytes``; once full, later answers are built per request as before."""
        if self._body_bytes + len(body) <= self.settings.body_cache_bytes:
            self._bodies[key] = body
            self._body_bytes += len(body)

    def _reason_text(self, why: ModelReason) -> str:
        key = (why.because_of, why.group, why.part)
        text = self._reason_texts.get(key)
        if text is None:
            phrases = reason_phrases(why, self.item_labels.__getitem__, lambda g: self.personas[g].display_name)
            text = "; ".join(phrases)
            if len(self._reason_texts) < 100_000:  # bounded: distinct (item, persona, part) triples
                self._reason_texts[key] = text
        return text

    def recommendations_of(self, user_id: str, n: int) -> tuple[RecommendationsOut, bool]:
        """The recommendations, and whether they were made without the database (run users while it is down:
        events recorded through the API are then not taken into account)."""
        n = self._check_n(n, "query.n")
        row = self.user_row.get(user_id)
        model_row = self.model_row.get(user_id)
        stored, events = self._lookup(user_id, row is not None)
        degraded = events is None
        extra = np.unique([self.item_row[i] for i in events or [] if i in self.item_row]).astype(np.int64)
        if stored is not None:
            return self._recommend_new(user_id, stored.text, stored.vector, extra, stored.persona, n), False
        if row is None or model_row is None:
            raise NotFoundError("user", user_id)
        persona = int(self.user_persona[row])
        indptr, indices = self.model.seen_.indptr, self.model.seen_.indices
        seen = indices[indptr[model_row] : indptr[model_row + 1]].astype(np.int64)
        if extra.size == 0:
            return self._explain(user_id, self.model.recommend([user_id], n), seen, persona, n), degraded
        # Events since the run: the history grows, and what was just taken is not recommended again.
        history = np.union1d(seen, extra)
        return self._recommend_new(user_id, None, None, history, persona, n), degraded

    def create_user(
        self,
        text: str | None,
        items: Sequence[str],
        n: int,
        receipt: Receipt | None = None,
        *,
        owner: str | None = None,
    ) -> NewUserOut:
        """Store, place and recommend for a new user; ``owner``: the id of the API key it belongs to."""
        if text is None and not items:
            raise FieldError("body", "needs 'text' or 'items' (or both): say something about the new user.")
        if text is not None and len(text) > self.settings.max_text_chars:
            raise FieldError(
                "body.text", f"holds at most {self.settings.max_text_chars} characters. Got {len(text)} instead."
            )
        n = self._check_n(n, "body.n")
        rows = self._check_items(items, "body.items")
        history = np.unique(np.asarray(rows, dtype=np.int64))
        vector = self._encode(text) if text else None
        persona = self._place(text, vector, history)
        user_id = f"new-{uuid.uuid4().hex[:16]}"
        # Everything is computed before the single write, so a failure leaves nothing behind.
        recs = self._recommend_new(user_id, text, vector, history, persona, n)
        out = NewUserOut(
            user_id=user_id,
            persona=self._persona_brief(persona),
            coarse_persona=self._coarse_brief(persona),
            recommendations=recs,
        )
        with self.storage.writing(user_id) as write:
            write.add_user(text=text, persona=persona, vector=vector, keep_text=self.settings.keep_text, owner=owner)
            write.add_events(items)
            if receipt is not None:
                write.save_receipt(receipt, 201, out.model_dump_json())
        return out

    def add_events(self, user_id: str, items: Sequence[str], kind: str, receipt: Receipt | None = None) -> EventsOut:
        self._check_items(items, "body.items")  # every item known, or nothing is written
        run_row = self.user_row.get(user_id)
        if run_row is None and not storable(user_id):
            raise NotFoundError("user", user_id)
        # One transaction under the user's write lock: the persona is placed from every event, this write's
        # included, and the count is the count after this write, whatever runs beside it.
        with self.storage.writing(user_id) as write:
            stored = write.user() if run_row is None else None
            if stored is None and run_row is None:
                raise NotFoundError("user", user_id)
            write.add_events(items, kind)
            taken = write.items()
            if stored is not None:
                history = np.unique(np.asarray([self.item_row[i] for i in taken if i in self.item_row]))
                persona = self._place(stored.text, stored.vector, history.astype(np.int64))
                write.set_persona(persona)
            else:
                assert run_row is not None
                persona = int(self.user_persona[run_row])
            out = EventsOut(
                user_id=user_id, recorded=len(items), events=len(taken), persona=persona if persona >= 0 else None
            )
            if receipt is not None:
                write.save_receipt(receipt, 201, out.model_dump_json())
        return out

    def delete_user(self, user_id: str) -> DeletedOut:
        """Erase a new user: their row (text or its hash, vector, persona), events and kept responses, in one
        transaction, with an audit record that holds no content. Users of the run cannot be erased here."""
        if user_id in self.user_row:
            raise ConflictError(
                f"User {user_id!r} belongs to the run folder: their profile, vector and history are part of its "
                "checksummed artefacts, which the service does not change. Remove them from the data and run the "
                "pipeline again to erase them; nothing was erased.",
                user_id,
            )
        if not storable(user_id):
            raise NotFoundError("user", user_id)
        with self.storage.writing(user_id) as write:
            if write.user() is None:
                raise NotFoundError("user", user_id)
            erased = write.erase()
        self.storage.compact()
        return DeletedOut(user_id=user_id, events_erased=erased)

    # -- idempotency ---------------------------------------------------------------------------------
    def receipt_for(self, key: str | None, request: str, scope: str = "") -> Receipt | None:
        """The receipt of a POST sent with an Idempotency-Key (None without one). ``request`` is the method,
        path and canonical body; ``scope`` who sent it, so that clients' keys never meet."""
        if key is None:
            return None
        if not key or not storable(key):
            raise FieldError(
                "header.Idempotency-Key",
                f"must be 1 to {MAX_ID_CHARS} characters of text (no NUL). Got {len(key)} characters instead.",
            )
        return Receipt.of(key, request, scope=scope, ttl_s=self.settings.idempotency_ttl_s)

    def once(
        self, receipt: Receipt | None, status: int, write: Callable[[Receipt | None], BaseModel]
    ) -> tuple[StoredReceipt, bool]:
        """Run a POST at most once per Idempotency-Key: (the response, whether it is a replay). A replay of the
        same request gets the first response back and writes nothing; the same key on another request is
        refused (422)."""
        if receipt is None:
            return StoredReceipt("", status, write(None).model_dump_json()), False
        done = self._replay(receipt)
        if done is not None:
            return done, True
        try:
            return StoredReceipt(receipt.request_hash, status, write(receipt).model_dump_json()), False
        except IntegrityError:
            # The same key in a concurrent request that committed first: this write was undone.
            done = self._replay(receipt)
            if done is None:
                raise
            return done, True

    def _replay(self, receipt: Receipt) -> StoredReceipt | None:
        done = self.storage.receipt(receipt)
        if done is not None and done.request_hash != receipt.request_hash:
            # 409, not 422: the request itself is valid; its key belongs to another request.
            raise ConflictError(
                "The Idempotency-Key header was already used for another request (another path or body). "
                "Send a new key with a new request."
            )
        return done

    # -- health --------------------------------------------------------------------------------------
    def health(self) -> Health:
        """Each dependency with its status; the overall status is "ok" only when none is down."""
        folder = Path(self.settings.model_dir)
        unchanged = _stat(folder / "manifest.json") == self._manifest
        checks = {
            "run_folder": Dependency(
                status="ok" if unchanged else "down",
                detail=f"{folder.name}: verified at start"
                if unchanged
                else f"{folder.name}: changed on disk since start; still serving what was loaded, restart to reload",
            ),
            "encoder": Dependency(
                status="unused" if self._encoder is None else ("down" if self.encoder_error else "ok"),
                detail="this run places new users' text without a reusable encoder"
                if self._encoder is None
                else (
                    f"failed on a request ({self.encoder_error})"
                    if self.encoder_error
                    else "matches the run's manifest (checked at start)"
                ),
            ),
        }
        new_users = events = None
        try:
            self.storage.ping()
            new_users = sum(self.storage.count_new_users().values())
            events = self.storage.count_events()
            checks["database"] = Dependency(status="ok", detail=f"{self.storage.dialect} answers")
        except SQLAlchemyError as exc:
            checks["database"] = Dependency(
                status="down",
                detail=f"{self.storage.dialect} does not answer ({type(exc).__name__}); users of the run are still "
                "served, without the events recorded since",
            )
        return Health(
            status="ok" if all(c.status != "down" for c in checks.values()) else "degraded",
            model=self.model_name,
            personas=len(self.personas),
            users=len(self.user_ids),
            items=len(self.item_ids),
            database=self.storage.dialect,
            new_users=new_users,
            events=events,
            checks=checks,
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


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_mtime_ns, found.st_size


def _verified_encoder(artefact: RunArtefact) -> Any | None:
    """The run's text encoder, loaded, its identity (model and tokenizer fingerprints) equal to the manifest's.
    Refused with one line (DataError) when it differs or does not load."""
    try:
        return artefact.text_encoder()
    except DataError:
        raise
    except Exception as exc:  # a damaged model file fails inside the runtime, in its own words
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise DataError(
            f"{artefact.folder}: the run's text encoder does not load ({type(exc).__name__}: {first[:200]}); "
            "its model files are damaged or missing. Reinstall the model, or run the pipeline again."
        ) from None
