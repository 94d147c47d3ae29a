"""Request and response bodies of the HTTP API (pydantic; they make the OpenAPI schema, with examples)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from personas.describe import Persona

__all__ = [
    "DeletedOut",
    "Dependency",
    "EventsIn",
    "EventsOut",
    "Health",
    "ItemOut",
    "ItemPage",
    "MapOut",
    "NewUserIn",
    "NewUserOut",
    "PersonaBrief",
    "PersonaDetail",
    "PersonaPage",
    "ProblemOut",
    "Reason",
    "Recommendation",
    "RecommendationsOut",
    "UserPersonaOut",
]

Route = Literal["cold", "few", "warm"]
EventKind = Literal["interaction", "view", "like", "purchase", "rating"]


def _no_nul(value: str | None) -> str | None:
    # PostgreSQL cannot store NUL; lone surrogates cannot be encoded as UTF-8 by any database.
    if value is not None:
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


class ProblemOut(BaseModel):
    """Every error: what went wrong, and which id or field."""

    error: Literal[
        "not_found",
        "validation_error",
        "bad_request",
        "payload_too_large",
        "conflict",
        "unavailable",
        "internal",
        "unauthorized",
        "forbidden",
        "rate_limited",
    ]
    detail: str
    id: str | None = Field(None, description="The unknown id (404).")
    kind: str | None = Field(None, description="What the unknown id names: user, item or persona (404).")
    fields: list[str] = Field(default_factory=list, description="The invalid fields (422), e.g. body.text.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": "not_found",
                    "detail": "No user '99999' in this run or the database.",
                    "id": "99999",
                    "kind": "user",
                    "fields": [],
                },
            ]
        }
    )


class Dependency(BaseModel):
    status: Literal["ok", "down", "unused"]
    detail: str


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field(description="ok: every dependency is up (HTTP 200); else 503.")
    model: str
    personas: int
    users: int
    items: int
    database: str = Field(description="Database dialect: sqlite or postgresql.")
    new_users: int | None = Field(description="None while the database is down.")
    events: int | None = Field(description="None while the database is down.")
    checks: dict[str, Dependency] = Field(description="run_folder, encoder and database, each with its status.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                    "model": "router",
                    "personas": 8,
                    "users": 943,
                    "items": 1682,
                    "database": "sqlite",
                    "new_users": 12,
                    "events": 40,
                    "checks": {
                        "run_folder": {"status": "ok", "detail": "demo: verified at start"},
                        "encoder": {"status": "ok", "detail": "matches the run's manifest (checked at start)"},
                        "database": {"status": "ok", "detail": "sqlite answers"},
                    },
                }
            ]
        }
    )


class PersonaBrief(BaseModel):
    group: int
    name: str
    display_name: str
    size: int
    share: float
    keywords: list[str]
    parent: int | None = Field(None, description="Two-level runs: a fine persona's coarse persona.")
    stability: float | None = Field(
        None, description="Mean Jaccard overlap of the members with the best-matching group of refits with other seeds."
    )
    unstable: bool = Field(False, description="stability below the run's threshold: trust this persona less.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "group": 3,
                    "name": "student · 19 · action",
                    "display_name": "student · 19 · action",
                    "size": 120,
                    "share": 0.127,
                    "keywords": ["student", "19", "action"],
                }
            ]
        }
    )


class PersonaPage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[PersonaBrief]


class TreeNode(BaseModel):
    persona: PersonaBrief
    children: list[PersonaBrief] = Field(description="Its fine sub-personas (empty in a one-level run).")


class TreeOut(BaseModel):
    """Coarse personas (for reading) with their fine sub-personas (for recommending); in a one-level run each
    persona is a root without children."""

    levels: Literal[1, 2]
    roots: list[TreeNode]


class Member(BaseModel):
    user_id: str
    x: float
    y: float


class PersonaDetail(BaseModel):
    card: Persona
    members: list[Member] = Field(description="A fixed sample of members with their map position.")
    new_users: int = Field(description="Users created through the API who were placed in this persona.")


class ItemRef(BaseModel):
    item_id: str
    title: str


class Reason(BaseModel):
    persona: int | None = Field(None, description="The persona whose taste shaped this item, when it did.")
    because_of: ItemRef | None = Field(None, description="The item of the user's history most like this one.")
    text: str = Field(description="The reason in words.")


class Recommendation(BaseModel):
    item_id: str
    title: str
    score: float
    reason: Reason


class RecommendationsOut(BaseModel):
    user_id: str
    persona: int | None = Field(description="The user's persona (None when nothing places them).")
    route: Route | None = Field(None, description="The cold-start router's route: cold, few or warm history.")
    history: int = Field(description="How many distinct items the recommendations were based on.")
    items: list[Recommendation]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "196",
                    "persona": 3,
                    "route": "warm",
                    "history": 39,
                    "items": [
                        {
                            "item_id": "50",
                            "title": "Star Wars (1977)",
                            "score": 2.31,
                            "reason": {
                                "persona": None,
                                "because_of": {"item_id": "181", "title": "Return of the Jedi (1983)"},
                                "text": "like Return of the Jedi (1983)",
                            },
                        }
                    ],
                }
            ]
        }
    )


class UserPersonaOut(BaseModel):
    user_id: str
    source: Literal["run", "api"] = Field(description="run: a user of the run folder; api: created with POST /users.")
    persona: PersonaBrief | None
    coarse_persona: PersonaBrief | None = Field(None, description="Two-level runs: the persona's coarse persona.")
    x: float | None = Field(None, description="Map position (run users).")
    y: float | None = None
    events: int | None = Field(
        description="Events recorded through the API for this user (None: the database is down; run users only)."
    )


class NewUserIn(BaseModel):
    """A user never seen: some text about them and/or a few items they took. At least one is needed."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"text": "I love space operas and old science fiction films", "items": ["50", "181"], "n": 10}
            ],
            # Either one is enough; the server refuses a body with neither (422 naming body).
            "anyOf": [
                {"required": ["text"], "properties": {"text": {"type": "string"}}},
                {"required": ["items"], "properties": {"items": {"minItems": 1}}},
            ],
        },
    )

    text: str | None = Field(None, min_length=1, description="Profile text (length limited by the server).")
    items: list[str] = Field(default_factory=list, description="Item ids the user took (count limited).")
    n: int = Field(10, ge=1, description="How many recommendations to return (the maximum is the server's max_n).")

    _check_text = field_validator("text")(_no_nul)


class NewUserOut(BaseModel):
    user_id: str
    persona: PersonaBrief | None
    coarse_persona: PersonaBrief | None = Field(None, description="Two-level runs: the persona's coarse persona.")
    recommendations: RecommendationsOut


class EventsIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"items": ["172", "174"], "kind": "like"}]}
    )

    items: list[str] = Field(min_length=1, description="Item ids the user interacted with.")
    kind: EventKind = "interaction"


class EventsOut(BaseModel):
    user_id: str
    recorded: int
    events: int = Field(description="All events of this user recorded through the API.")
    persona: int | None


class DeletedOut(BaseModel):
    user_id: str
    events_erased: int = Field(description="Events of the user that were erased with them.")


class ItemOut(BaseModel):
    item_id: str
    title: str
    popularity: int = Field(description="Users of the run who took the item.")
    distinctive_for: list[int] = Field(description="Personas for which the item is distinctive.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"item_id": "50", "title": "Star Wars (1977)", "popularity": 583, "distinctive_for": [2]}]
        }
    )


class ItemPage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[ItemOut]


class MapOut(BaseModel):
    """The 2-D persona map as columns (compact): one entry per drawn user."""

    user_id: list[str]
    persona: list[int]
    x: list[float]
    y: list[float]
    total: int = Field(description="Users in the run (the map may draw a sample).")
