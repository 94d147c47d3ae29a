"""Evaluation: seeded splitters, per-list metrics, ``Experiment(split, models, metrics).run()``, reports
that print the protocol beside the numbers, and group-quality measures."""

from personas.evaluate.experiment import Experiment, GroupSource, Tuned, evaluate_model, rank_users
from personas.evaluate.metrics import (
    MAP,
    MRR,
    NDCG,
    Coverage,
    HitRate,
    IntraListDiversity,
    Metric,
    MetricContext,
    Novelty,
    Precision,
    Recall,
    default_metrics,
    parse_metric,
)
from personas.evaluate.report import Comparison, ExperimentResult, ModelRun, paired_test
from personas.evaluate.splits import (
    ColdItems,
    ColdUsers,
    FewShotUsers,
    LeaveOneOut,
    RandomHoldout,
    Split,
    Splitter,
    TemporalSplit,
)

__all__ = [
    "MAP",
    "MRR",
    "NDCG",
    "ColdItems",
    "ColdUsers",
    "Comparison",
    "Coverage",
    "Experiment",
    "ExperimentResult",
    "FewShotUsers",
    "GroupSource",
    "HitRate",
    "IntraListDiversity",
    "LeaveOneOut",
    "Metric",
    "MetricContext",
    "ModelRun",
    "Novelty",
    "Precision",
    "RandomHoldout",
    "Recall",
    "Split",
    "Splitter",
    "TemporalSplit",
    "Tuned",
    "default_metrics",
    "evaluate_model",
    "paired_test",
    "parse_metric",
    "rank_users",
]
