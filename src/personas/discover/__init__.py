"""Group discovery: find groups of similar users from their vectors, choose how many, check stability.

Every method follows the :class:`GroupFinder` contract (``fit(X) -> self``, ``labels_``, ``n_groups_``,
``centroids_``, ``assign(X)``); configs are small pydantic models that round-trip through JSON, and
:func:`make_finder` builds a method from one.

Importing this package sets ``OPENBLAS_CORETYPE=SkylakeX`` when the variable is unset and the CPU has
AVX-512 (read from /proc/cpuinfo): faiss-cpu bundles an OpenBLAS (0.3.15) that does not recognise newer
AVX-512 CPUs and falls back to a generic kernel; with this hint it gave identical results 4-7x faster
(DESIGN.md). It must happen before faiss is imported, hence here. On CPUs without AVX-512 the hint would
crash BLAS (illegal instruction), so it is not set (measured on an AMD EPYC with AVX2: OpenBLAS picks its
Zen kernel itself; Haswell/Zen hints change nothing). Set the variable yourself to override.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from personas.config import config_error, registry
from personas.discover import _blas  # noqa: F401  (sets the OpenBLAS hint before faiss loads)
from personas.discover._base import (
    MAX_LARGEST_SHARE,
    MAX_NOISE_SHARE,
    MIN_GROUPS,
    NOISE,
    BaseGroupFinder,
    GroupFinder,
    GroupingReport,
    GroupingWarning,
    centroids_of,
    grouping_report,
)
from personas.discover.density import HDBSCANConfig, HDBSCANGroups
from personas.discover.graph import LeidenConfig, LeidenGroups
from personas.discover.hierarchy import AgglomerativeConfig, AgglomerativeGroups
from personas.discover.kmeans import KMeansConfig, KMeansGroups
from personas.discover.neighbours import KNNIndex, NeighboursConfig, knn_graph
from personas.discover.selection import (
    GroupQuality,
    KChoice,
    KScore,
    StabilityResult,
    choose_k,
    group_quality,
    stability,
)
from personas.discover.tree import (
    TREE_KINDS,
    Hierarchy,
    StabilityCheck,
    TreeKind,
    allocate,
    choose_coarse_k,
    choose_top_down_k,
    coarse_refits,
    group_stability,
    nest,
    place_in_tree,
    refits,
    top_down,
    top_down_refits,
)
from personas.discover.weighting import WeightChoice, WeightScore, choose_behaviour_weight

__all__ = [
    "MAX_LARGEST_SHARE",
    "MAX_NOISE_SHARE",
    "MIN_GROUPS",
    "NOISE",
    "TREE_KINDS",
    "AgglomerativeConfig",
    "AgglomerativeGroups",
    "BaseGroupFinder",
    "FinderConfig",
    "GroupFinder",
    "GroupQuality",
    "GroupingReport",
    "GroupingWarning",
    "HDBSCANConfig",
    "HDBSCANGroups",
    "Hierarchy",
    "KChoice",
    "KMeansConfig",
    "KMeansGroups",
    "KNNIndex",
    "KScore",
    "LeidenConfig",
    "LeidenGroups",
    "NeighboursConfig",
    "StabilityCheck",
    "StabilityResult",
    "TreeKind",
    "WeightChoice",
    "WeightScore",
    "allocate",
    "centroids_of",
    "choose_behaviour_weight",
    "choose_coarse_k",
    "choose_k",
    "choose_top_down_k",
    "coarse_refits",
    "finder_config_from_json",
    "group_quality",
    "group_stability",
    "grouping_report",
    "knn_graph",
    "make_finder",
    "nest",
    "place_in_tree",
    "refits",
    "stability",
    "top_down",
    "top_down_refits",
]

FinderConfig = Annotated[
    KMeansConfig | AgglomerativeConfig | HDBSCANConfig | LeidenConfig, Field(discriminator="method")
]
_ADAPTER: TypeAdapter[KMeansConfig | AgglomerativeConfig | HDBSCANConfig | LeidenConfig] = TypeAdapter(FinderConfig)


def finder_config_from_json(text: str | bytes) -> KMeansConfig | AgglomerativeConfig | HDBSCANConfig | LeidenConfig:
    """Parse a config written by ``config.model_dump_json()``; the ``method`` field picks the class."""
    try:
        return _ADAPTER.validate_json(text)
    except ValidationError as exc:
        raise config_error("the group finder config", exc) from None


def make_finder(config: KMeansConfig | AgglomerativeConfig | HDBSCANConfig | LeidenConfig) -> BaseGroupFinder[Any]:
    """The unfitted group finder for a config."""
    return registry.build(config, BaseGroupFinder)
