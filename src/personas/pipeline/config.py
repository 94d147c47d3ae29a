"""The pipeline's TOML configuration, validated by pydantic; errors name the key and the allowed values."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import ConfigDict, Field, TypeAdapter, ValidatorFunctionWrapHandler, WrapValidator, model_validator

from personas.config import ComponentConfig, registry
from personas.data import CleanConfig, ProfileConfig
from personas.discover import BaseGroupFinder
from personas.encode import BehaviourConfig, CachedConfig, FusionConfig, TuneConfig, encoder_config
from personas.errors import ConfigError
from personas.recommend import Recommender

__all__ = [
    "DataSection",
    "DiscoverSection",
    "EncodeSection",
    "EvaluateSection",
    "OutputSection",
    "PipelineConfig",
    "RecommendSection",
    "load_config",
]

#: Recommenders a run can fit, by their TOML names (kebab-case kinds of the component registry).
ModelName = Literal["most-popular", "group-popular", "item-knn", "ease", "als", "content", "hybrid", "router"]
#: TOML names of the text encoders of ``[encode] kind`` and the encoder kind each builds. "auto": the corpus
#: language decides (MiniLM for English, the multilingual encoder otherwise; see Pipeline.encode_section).
TextKind = Literal["auto", "minilm", "sentence-transformers", "tfidf", "multilingual"]


def _extras(section: ComponentConfig) -> dict[str, Any]:
    return dict(section.model_extra or {})


def _unknown(owner: str, keys: Mapping[str, Any], config_class: type[ComponentConfig]) -> None:
    unknown = [key for key in keys if key not in config_class.model_fields]
    if unknown:
        raise ConfigError(f"{owner} has no parameter {unknown[0]!r}; check the spelling.")


class DataSection(ComponentConfig):
    """Either a built-in ``dataset`` or files (``interactions`` + optional ``users``/``items``/``tags``)."""

    dataset: str | None = None
    interactions: Path | None = None
    users: Path | None = None
    items: Path | None = None
    tags: Path | None = None
    columns: dict[Literal["users", "items", "interactions", "tags"], dict[str, str]] = Field(default_factory=dict)
    unknown_ids: Literal["error", "drop"] = "error"
    delimiter: str | None = None
    encoding: str = "utf-8"
    #: ``[data.clean]``: markup, broken Unicode, links, addresses, @mentions and "RT" out of every text (on).
    clean: CleanConfig = Field(default_factory=CleanConfig)

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.dataset is None) == (self.interactions is None):
            raise ValueError(
                "The 'data' section needs exactly one of 'dataset' (a built-in name such as \"ml-100k\") or "
                "'interactions' (a file path)."
            )
        return self


class EncodeSection(ComponentConfig):
    """How users become vectors. Keys other than these reach the text encoder's config (e.g. ``n_components``
    for ``kind = "tfidf"``, ``threads`` for ``"minilm"``). ``tune = true`` trains a projection head on the run's
    interactions and puts the users' and items' text vectors (and new users' texts) through it; its training
    is set in ``[encode.tune_options]`` (:class:`~personas.encode.TuneConfig`)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    kind: TextKind = "auto"
    #: "auto": measured on each run (personas.discover.choose_behaviour_weight: the weight whose groups are the
    #: most stable across seeds; the run's manifest keeps the figures). 0.5 used to be the default, and on data
    #: where behaviour is noise (one interaction per user) it turned clear text groups into noise (NMI 0.01).
    behaviour_weight: float | str = Field(
        "auto", description='0: text only; 1: behaviour only; "auto": measured on the data.'
    )
    behaviour_dim: int = Field(64, ge=2)
    batch_size: int = Field(64, ge=1)
    cache: bool = True
    tune: bool = False
    tune_options: TuneConfig = Field(default_factory=TuneConfig)

    @model_validator(mode="after")
    def _check_extras(self) -> Self:
        weight = self.behaviour_weight
        if weight != "auto" and (isinstance(weight, str) or not 0.0 <= weight <= 1.0):
            raise ValueError(
                "The 'behaviour_weight' parameter of [encode] must be a float in [0, 1] or \"auto\". "
                f"Got {weight!r} instead."
            )
        if self.model_extra and self.kind == "auto":
            raise ValueError(
                f'[encode] kind = "auto" takes no encoder parameters (got {", ".join(self.model_extra)}): the '
                'encoder is chosen from the corpus language. Set kind = "minilm" or "multilingual" to pass them.'
            )
        if self.model_extra:
            self.text_config()
        if self.tune and not isinstance(self.behaviour_weight, str) and self.behaviour_weight >= 1.0:
            raise ValueError(
                "The 'encode.tune' parameter needs text: with behaviour_weight = 1 the run encodes no text to tune. "
                "Lower behaviour_weight or set tune = false."
            )
        return self

    def text_config(self, cache_dir: str | Path | None = None) -> ComponentConfig:
        """The text encoder's config (wrapped in a cache config when ``cache`` and a ``cache_dir`` are given).
        ``"auto"`` not yet resolved from a corpus is MiniLM."""
        base = encoder_config({"kind": "onnx"} if self.kind in ("minilm", "auto") else {"kind": self.kind})
        extras = _extras(self)
        _unknown("[encode]", extras, type(base))
        text = type(base).validate_as(extras, f"the {self.kind} encoder")
        if self.cache and cache_dir is not None:
            return CachedConfig(encoder=text, directory=str(cache_dir))
        return text

    def behaviour_config(self, seed: int) -> BehaviourConfig:
        return BehaviourConfig(n_components=self.behaviour_dim, seed=seed)

    def encoder_config(
        self, *, seed: int, cache_dir: str | Path | None = None, behaviour_weight: float | None = None
    ) -> ComponentConfig:
        """The encoder of a run: text, behaviour, or their fusion (``text_weight = 1 - behaviour_weight``).
        With ``behaviour_weight = "auto"`` the weight must be given (the pipeline measures it)."""
        weight = self.behaviour_weight if behaviour_weight is None else behaviour_weight
        if isinstance(weight, str):
            raise ConfigError(
                'behaviour_weight = "auto" is chosen on the data by the pipeline; pass the chosen behaviour_weight.'
            )
        if weight >= 1.0:
            return self.behaviour_config(seed)
        text = self.text_config(cache_dir)
        if weight <= 0.0:
            return text
        return FusionConfig(text_encoder=text, behaviour=self.behaviour_config(seed), text_weight=1.0 - weight)


_METHODS = ("kmeans", "agglomerative", "hdbscan", "leiden")


class DiscoverSection(ComponentConfig):
    """How groups are found. Keys other than these reach the method's config (e.g. ``linkage`` for
    ``"agglomerative"``, ``min_group_size`` for ``"hdbscan"``)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    method: Literal["kmeans", "agglomerative", "hdbscan", "leiden"] = "kmeans"
    k: int | Literal["auto"] = "auto"
    candidates: list[int] = Field(default_factory=lambda: [4, 6, 8, 10, 12])
    seed: int = 0
    # Two levels: fine personas (k = "auto": the candidate whose group-popular recommendations score best on a
    # validation hold-out) nested in coarse ones for reading (a cut of the fine groups' Ward tree).
    hierarchy: bool = False
    coarse_candidates: list[int] = Field(default_factory=lambda: list(range(5, 13)))
    # How the two levels are built. "bottom-up": coarse = Ward merges of the fine groups (the better recommender
    # on ml-latest-small). "top-down": coarse = k-means of the text vectors, fine groups found inside each (names
    # read in the text space point at their members better: ml-100k coarse name AUC 0.716 -> 0.872).
    tree: Literal["bottom-up", "top-down"] = "bottom-up"
    # Stability on the cards: refits with other seeds on subsamples (0 = none), and the flag's threshold.
    stability_runs: int = Field(3, ge=0, le=20)
    stability_threshold: float = Field(0.6, ge=0.0, le=1.0)

    @property
    def chooses_k(self) -> bool:
        """Whether the run chooses k: ``k = "auto"`` for a method with a k and no ``distance_threshold``."""
        has_k = "k" in registry.config_class(self.method, BaseGroupFinder, where="discover.method").model_fields
        return self.k == "auto" and has_k and _extras(self).get("distance_threshold") is None

    def finder_config(self, k: int) -> ComponentConfig:
        """The group finder's config at ``k`` groups (for methods with a ``k``), with this section's seed
        (for methods with one) and extra keys."""
        config_class = registry.config_class(self.method, BaseGroupFinder, where="discover.method")
        extras = _extras(self)
        for key in extras:  # a knob of another method: say which, since method defaults to "kmeans"
            owners = [m for m in _METHODS if key in registry.config_class(m, BaseGroupFinder).model_fields]
            if key not in config_class.model_fields and owners:
                raise ConfigError(
                    f"[discover] has no parameter {key!r} with method = {self.method!r}; it is a parameter of "
                    + " or ".join(f"method = {m!r}" for m in owners)
                    + "."
                )
        _unknown("[discover]", extras, config_class)
        params: dict[str, Any] = {}
        if "k" in config_class.model_fields and extras.get("distance_threshold") is None:
            params["k"] = k  # a distance threshold cuts the tree instead of a number of groups
        if "seed" in config_class.model_fields:
            params["seed"] = self.seed
        return config_class.validate_as({**params, **extras}, f"the {self.method} method")

    @model_validator(mode="after")
    def _check_k(self) -> Self:
        if isinstance(self.k, int) and self.k < 2:
            raise ValueError(f"The 'k' parameter of [discover] must be an int >= 2 or \"auto\". Got {self.k} instead.")
        if any(c < 2 for c in self.coarse_candidates) or not self.coarse_candidates:
            raise ValueError(
                "The 'coarse_candidates' parameter of [discover] must be a non-empty list of ints >= 2. "
                f"Got {self.coarse_candidates} instead."
            )
        if any(c < 2 for c in self.candidates) or not self.candidates:
            raise ValueError(
                "The 'candidates' parameter of [discover] must be a non-empty list of ints >= 2. "
                f"Got {self.candidates} instead."
            )
        if self.tree == "top-down" and (not self.hierarchy or self.method != "kmeans"):
            raise ValueError(
                'The \'tree\' parameter of [discover] = "top-down" needs hierarchy = true and method = "kmeans". '
                f"Got hierarchy = {str(self.hierarchy).lower()}, method = {self.method!r} instead."
            )
        if self.model_extra:
            self.finder_config(2)
        return self


_DEFAULT_MODELS: list[ModelName] = ["most-popular", "group-popular", "ease"]
_MODEL_LIST: TypeAdapter[list[ModelName]] = TypeAdapter(list[ModelName])


def _models(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """``models = ["ease", ...]`` (defaults), or tables ``[recommend.models.ease] l2 = 300`` (name -> parameters)."""
    if isinstance(value, Mapping):
        names = _MODEL_LIST.validate_python(list(value))
        tables = {}
        for name in names:
            params = value[name]
            if isinstance(params, ComponentConfig):
                params = params.model_dump()
            if not isinstance(params, Mapping):
                raise ConfigError(f"[recommend.models.{name}] must be a table of parameters. Got {params!r} instead.")
            tables[name] = dict(params)
        return tables
    return _MODEL_LIST.validate_python(value)


class RecommendSection(ComponentConfig):
    """``models``: a list of names (fitted with their defaults), or one table per model with its parameters:
    ``[recommend.models.ease]`` ``l2 = 300``."""

    models: Annotated[list[ModelName] | dict[ModelName, dict[str, Any]], WrapValidator(_models)] = Field(
        default_factory=lambda: list(_DEFAULT_MODELS)
    )
    n: int = Field(10, ge=1, le=1000)

    @property
    def names(self) -> list[str]:
        """The models' TOML names, in order."""
        return list(self.models)

    def model_configs(self) -> dict[str, ComponentConfig]:
        """TOML name -> the recommender's config; errors name the section, e.g. ``[recommend.models.ease]``."""
        tables: dict[str, dict[str, Any]] = (
            {str(k): v for k, v in self.models.items()}
            if isinstance(self.models, dict)
            else {n: {} for n in self.models}
        )
        configs = {}
        for name, params in tables.items():
            section = f"[recommend.models.{name}]"
            config_class = registry.config_class(name, Recommender, where="recommend.models")
            try:
                _unknown(f"the {name} model", params, config_class)
                configs[name] = config_class.validate_as(dict(params), f"the {name} model")
            except ConfigError as exc:
                raise ConfigError(f"{section} {exc}") from None
        return configs


class EvaluateSection(ComponentConfig):
    """Which protocol scores the run's models (the same five as ``personas evaluate --protocol``)."""

    enabled: bool = True
    protocol: Literal["warm", "cold-users", "few-shot", "few-shot-new", "cold-items", "cold-users-tags"] = "warm"
    k: list[int] = Field(default_factory=lambda: [10, 20])
    #: warm: share of each user's last interactions held out; cold-users/few-shot: of users (cold-users-tags: of
    #: the users who wrote tags); cold-items: of items. Default: the protocol's (0.2; cold-users-tags 0.5).
    test_fraction: float | None = Field(None, gt=0.0, lt=1.0)
    #: warm and few-shot: users with fewer interactions are never held out (default 5 warm, 6 few-shot).
    min_interactions: int | None = Field(None, ge=2)
    #: few-shot protocols: how many of a held-out user's first items are revealed (one table per value).
    n_shots: list[int] = Field(default_factory=lambda: [1, 3, 5])

    @model_validator(mode="after")
    def _check_shots(self) -> Self:
        # checked here, not when the evaluation starts after every other stage has run
        if not self.n_shots or min(self.n_shots) < 0:
            raise ValueError(
                "The 'n_shots' parameter of [evaluate] must be a non-empty list of ints >= 0. "
                f"Got {self.n_shots} instead."
            )
        few_shot = self.protocol.startswith("few-shot")
        if few_shot and self.min_interactions is not None and self.min_interactions <= max(self.n_shots):
            raise ValueError(
                f"The 'min_interactions' parameter of [evaluate] must be more than the largest n_shots "
                f"({max(self.n_shots)}) for protocol = {self.protocol!r}: a held-out user needs items left to "
                f"predict. Got {self.min_interactions} instead."
            )
        return self


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*$", re.IGNORECASE)
_MIN_BUDGET = 256 * 2**20


def parse_size(value: int | str) -> int:
    """Bytes of a size: an int, or "4GB", "512MB", "1.5G" (binary units: 1GB = 2**30 bytes), at least 256 MB."""
    size: float | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str) and (match := _SIZE.match(value)):
        size = float(match.group(1)) * 1024 ** "BKMGT".index(match.group(2).upper() or "B")
    if size is None or size < _MIN_BUDGET:
        raise ValueError(
            f'The \'memory_budget\' parameter must be a size of at least 256MB, such as "4GB" or "512MB". '
            f"Got {value!r} instead."
        )
    return int(size)


class OutputSection(ComponentConfig):
    dir: Path = Path("runs/demo")
    report: bool = True


#: Recommenders the Spark engine fits as Spark jobs (registry kinds; ``[recommend] models`` spells them with
#: dashes); the others are fitted on its driver.
SPARK_MODEL_KINDS = ("most_popular", "group_popular", "als")


class PipelineConfig(ComponentConfig):
    #: BLAS/OpenMP threads for the numeric stages. 1 is the default because, on a small shared machine, 2-thread
    #: BLAS on ml-100k-sized matrices measured up to 30x slower than 1 thread when another process was busy.
    #: None leaves the libraries' defaults (all cores); raise it for large data on a quiet machine.
    threads: int | None = Field(1, ge=1)
    #: "local" runs in this process (numpy/faiss); "spark" runs on Apache Spark through personas.spark
    #: (``personas run --engine spark``) and writes the same run folder.
    engine: Literal["local", "spark"] = "local"
    #: Spark master URL for engine = "spark": local[N], spark://host:7077, yarn, k8s://...
    master: str = "local[2]"
    #: Peak memory the single-machine run aims to stay under ("4GB", "512MB", or bytes): it decides whether
    #: the run streams (``streaming = "auto"``) and, when it does, the chunk size and the k-means sample.
    memory_budget: int | str = "4GB"
    #: "auto": stream the data in chunks (personas.pipeline.streamed) when Parquet interactions would need
    #: more than memory_budget in memory; "on": always; "off": never.
    streaming: Literal["auto", "on", "off"] = "auto"
    #: Rows k-means is fitted on when streaming (then every user is assigned); None: what the budget allows.
    kmeans_sample: int | None = Field(None, ge=1)
    #: engine = "spark": memory (GB) the driver may use to fit the models Spark does not fit (EASE, hybrid,
    #: router...; personas.spark._driver estimates it from the data's size after loading and refuses above it).
    driver_memory_gb: float = Field(4.0, gt=0)
    data: DataSection
    profiles: ProfileConfig = Field(default_factory=ProfileConfig)
    encode: EncodeSection = Field(default_factory=EncodeSection)
    discover: DiscoverSection = Field(default_factory=DiscoverSection)
    recommend: RecommendSection = Field(default_factory=RecommendSection)
    evaluate: EvaluateSection = Field(default_factory=EvaluateSection)
    output: OutputSection = Field(default_factory=OutputSection)

    @property
    def memory_budget_bytes(self) -> int:
        """``memory_budget`` in bytes (checked when the config is read)."""
        return parse_size(self.memory_budget)

    @model_validator(mode="after")
    def _check_models(self) -> Self:
        self.memory_budget_bytes  # noqa: B018 - a bad size is refused when the config is read
        if isinstance(self.recommend.models, dict):
            self.recommend.model_configs()  # errors name [recommend.models.NAME]
        if self.encode.tune and self.engine != "local":
            # the Spark engine encodes on its workers and has no tuning stage: refuse rather than ignore the key
            raise ValueError(
                "The 'encode.tune' parameter needs engine = \"local\"; the Spark engine does not tune the text "
                f"space. Got engine = {self.engine!r} instead."
            )
        if self.discover.tree == "top-down" and self.encode.behaviour_weight == 1.0:
            raise ValueError(
                "The 'tree' parameter of [discover] = \"top-down\" finds coarse groups in the text space, but "
                '[encode] behaviour_weight = 1 encodes no text. Lower behaviour_weight or set tree = "bottom-up".'
            )
        if self.engine == "spark":
            self._check_spark()
        return self

    def _check_spark(self) -> None:
        """What the Spark engine cannot do is refused when the config is read, before any work: it used to fail
        after minutes of work. (Models Spark does not fit are fitted on the driver when the data fit there; that
        is checked once the data's size is known, after loading.)"""
        if self.discover.method != "kmeans":
            raise ValueError(
                f"The Spark engine discovers groups with k-means; [discover] method = {self.discover.method!r} "
                'runs on engine = "local" only.'
            )

    def encoder_config(
        self, cache_dir: str | Path | None = None, *, behaviour_weight: float | None = None
    ) -> ComponentConfig:
        """The run's encoder config (the behaviour SVD is seeded with ``[discover] seed``)."""
        return self.encode.encoder_config(
            seed=self.discover.seed, cache_dir=cache_dir, behaviour_weight=behaviour_weight
        )


def _name_section(message: str, name: str) -> str:
    """An error of section ``name`` as the file spells it: a sub-table's ("[tune_options] ... of [encode]") becomes
    "... of [encode.tune_options]"; a check of the section's own (a finder's parameters) gets "[name]" in front."""
    sub = re.match(rf"^\[(\w+)\] (.*?)\[{name}\](.*)$", message, flags=re.DOTALL)
    if sub is not None:
        return f"{sub[2]}[{name}.{sub[1]}]{sub[3]}"
    return message if f"[{name}" in message else f"[{name}] {message}"


def load_config(path: str | Path) -> PipelineConfig:
    """Read and validate a pipeline TOML file. Data paths are relative to the file; the output folder to the
    working directory."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found.")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}).") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc}).") from None
    base = path.parent
    data = raw.get("data")
    if isinstance(data, dict):
        for key in ("interactions", "users", "items", "tags"):
            if isinstance(data.get(key), str) and not Path(data[key]).is_absolute():
                data[key] = str(base / data[key])
    try:
        # Each section on its own first, so that errors name it as the file does ("[discover]"), not its class.
        for name, field in PipelineConfig.model_fields.items():
            section_class = field.annotation
            if not (isinstance(section_class, type) and issubclass(section_class, ComponentConfig)):
                continue
            if isinstance(raw.get(name), dict):
                try:
                    section_class.validate_as(raw[name], f"[{name}]")
                except ConfigError as exc:
                    raise ConfigError(_name_section(str(exc), name)) from None
        return PipelineConfig.validate_as(raw, "the config file")
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
