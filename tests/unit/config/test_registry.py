"""One component base and one registry: kinds, building, the config-or-keywords constructor, no import cycle."""

from __future__ import annotations

from typing import get_args

import grimp
import pytest

from personas.config import Component, as_kind, as_name, registry
from personas.discover import AgglomerativeConfig, AgglomerativeGroups, BaseGroupFinder, KMeansGroups, make_finder
from personas.encode import BaseEncoder, TfidfConfig, TfidfEncoder, make_encoder
from personas.errors import ConfigError
from personas.evaluate import TemporalSplit
from personas.pipeline.config import ModelName
from personas.recommend import EASE, ColdStartRouter, EASEConfig, Hybrid, ItemKNN, MostPopular, Recommender


def test_kinds_are_snake_case_and_names_kebab_case_only_at_the_edge() -> None:
    assert as_kind("item-knn") == "item_knn" and as_kind("ease") == "ease"
    assert as_name("group_popular") == "group-popular"
    # Other layers register their own (the evaluation's peers: lightfm) when they are imported.
    library = [
        k
        for k in registry.kinds(Recommender)
        if registry.get(k, Recommender).__module__.startswith("personas.recommend")
    ]
    assert library == sorted(
        [
            "als",
            "content",
            "ease",
            "feature_cf",
            "group_popular",
            "hybrid",
            "item_knn",
            "most_popular",
            "random",
            "router",
            "text_match",
        ]
    )
    assert all("-" not in kind for kind in registry.kinds())
    # Every name a pipeline TOML accepts is a registered recommender.
    assert {as_kind(name) for name in get_args(ModelName)} <= set(registry.kinds(Recommender))


def test_registry_builds_from_a_kind_a_name_or_a_config() -> None:
    assert type(registry.build("item-knn", Recommender)) is ItemKNN
    model = registry.build("ease", Recommender, l2=123.0)
    assert isinstance(model, EASE) and model.config.l2 == 123.0
    assert registry.build(EASEConfig(l2=5.0), Recommender).config.l2 == 5.0
    assert registry.get("router", Recommender) is ColdStartRouter and registry.get("hybrid", Recommender) is Hybrid
    assert registry.kind(MostPopular) == "most_popular" and registry.kind(EASEConfig()) == "ease"
    assert type(registry.build(AgglomerativeConfig(k=3), BaseGroupFinder)) is AgglomerativeGroups
    assert type(make_finder(AgglomerativeConfig(k=3))) is AgglomerativeGroups
    assert type(registry.build(TfidfConfig(), BaseEncoder)) is TfidfEncoder
    assert type(make_encoder("tfidf")) is TfidfEncoder


def test_a_kind_is_looked_up_within_its_family() -> None:
    with pytest.raises(ConfigError, match=r"The 'kind' parameter must be one of .*item-knn.*Got 'kmeans' instead"):
        registry.get("kmeans", Recommender)
    with pytest.raises(ConfigError, match="Got 'bert4rec' instead"):
        registry.build("bert4rec", Recommender)


def test_saved_models_find_their_class_by_name() -> None:
    assert registry.by_class_name("EASE", Recommender) is EASE
    assert registry.by_class_name("KMeansGroups", Recommender) is None


def test_one_constructor_for_every_component() -> None:
    for cls, config, other in [
        (EASE, EASEConfig(l2=3.0), "l2"),
        (KMeansGroups, KMeansGroups.Config(k=3), "k"),
        (TemporalSplit, TemporalSplit.Config(seed=2), "seed"),
    ]:
        assert issubclass(cls, Component)
        assert cls(config).config is config
        with pytest.raises(ConfigError, match="pass either a config or keyword parameters, not both"):
            cls(config, **{other: 1})
    with pytest.raises(ConfigError, match=r"EASE takes a EASEConfig\. Got a TfidfConfig instead"):
        EASE(TfidfConfig())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"KMeansGroups needs a KMeansConfig\. Got EASEConfig instead"):
        KMeansGroups(EASEConfig())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="The 'l2' parameter of EASE must be a float > 0"):
        EASE(l2=0.0)


def test_two_components_cannot_claim_one_kind() -> None:
    from typing import ClassVar

    from personas.config import ComponentConfig

    class Clash(ComponentConfig):
        kind: ClassVar[str] = "ease"

    with pytest.raises(ConfigError, match="Two components claim the kind 'ease'"):

        class Other(Component[Clash]):
            Config = Clash


def test_no_module_level_import_cycle_in_personas() -> None:
    graph = grimp.build_graph("personas")
    cycles = [
        (module, imported)
        for module in sorted(graph.modules)
        for imported in graph.find_modules_directly_imported_by(module)
        if graph.chain_exists(importer=imported, imported=module)
    ]
    assert cycles == []
