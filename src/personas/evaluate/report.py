"""Experiment results: the protocol header, the table (markdown + JSON), per-user values, paired tests."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from personas import __version__
from personas._files import write_atomic
from personas.errors import ConfigError

if TYPE_CHECKING:
    from personas.evaluate.metrics import Metric
    from personas.evaluate.splits import Split

__all__ = ["Comparison", "ExperimentResult", "ModelRun", "paired_test", "protocol_header"]


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def protocol_header(
    split: Split,
    metrics: Sequence[Metric],
    *,
    seed: int,
    tune_metric: str,
    grouped: bool,
    started: float,
) -> dict[str, Any]:
    """Everything needed to read (and rerun) the numbers, printed above the table."""
    n_items = split.train.n_items
    if split.candidates is None:
        ranking = f"full ranking over all {n_items} items; each user's train items masked out"
    else:
        ranking = f"full ranking over the {len(split.candidates)} held-out items (of {n_items}); train items masked"
    return {
        "dataset": split.dataset,
        "dataset_fingerprint": split.fingerprint[:16],
        "users_items_interactions": [
            split.train.n_users,
            n_items,
            split.train.n_interactions + split.test.n_interactions + split.dropped_repeats,
        ],
        "protocol": split.protocol,
        "split": split.describe(),
        "filtering": split.filtering(),
        "ranking": ranking,
        "tie_breaking": f"one fixed random item order (seed {seed}) shared by all models",
        "metrics": [m.name for m in metrics],
        "K": sorted({m.k for m in metrics}),
        "tuning": (
            f"grid search on a validation split carved from train (same rules, seed + 1), maximising {tune_metric}"
        ),
        "groups": "computed from train data only" if grouped else "none",
        "seeds": {"split": split.splitter.config.seed, "experiment": seed},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "machine": f"{_cpu_name()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}",
        "software": f"personas {__version__}, Python {platform.python_version()}, numpy {np.__version__}",
    }


@dataclass
class ModelRun:
    """One model's result: the overall numbers, per-user values and timings."""

    name: str
    model: str
    config: dict[str, Any]
    tuned: dict[str, Any]
    trials: list[dict[str, Any]]
    overall: dict[str, float]
    per_user: dict[str, np.ndarray] = field(repr=False)
    fit_seconds: float = 0.0
    rank_seconds: float = 0.0
    tune_seconds: float = 0.0


@dataclass(frozen=True)
class Comparison:
    """A paired comparison of two models on one metric over the same users."""

    a: str
    b: str
    metric: str
    mean_a: float
    mean_b: float
    relative: float  # mean_a / mean_b - 1
    p_value: float
    test: str
    n_users: int


def paired_test(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of per-user differences (1.0 when all differences are 0)."""
    from scipy.stats import wilcoxon

    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if not np.any(diff != 0):
        return 1.0
    return float(wilcoxon(diff, zero_method="wilcox", alternative="two-sided").pvalue)


@dataclass
class ExperimentResult:
    protocol: dict[str, Any]
    runs: list[ModelRun]
    users: list[str]
    headline: str
    ours: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    # -- access ------------------------------------------------------------------------------------------
    def run(self, name: str) -> ModelRun:
        for r in self.runs:
            if r.name == name:
                return r
        raise ConfigError(f"No model named {name!r} in this result; models: {[r.name for r in self.runs]}.")

    def table(self) -> pd.DataFrame:
        """Models x metrics (overall numbers), plus fit/rank seconds."""
        rows = []
        for r in self.runs:
            rows.append({"model": r.name, **r.overall, "fit_s": r.fit_seconds, "rank_s": r.rank_seconds})
        return pd.DataFrame(rows).set_index("model")

    def per_user_frame(self) -> pd.DataFrame:
        """One row per (model, user) with every per-user metric."""
        frames = [pd.DataFrame({"model": r.name, "user_id": self.users, **r.per_user}) for r in self.runs]
        return pd.concat(frames, ignore_index=True)

    def compare(self, a: str, b: str, metric: str | None = None) -> Comparison:
        metric = metric or self.headline
        va, vb = self.run(a).per_user.get(metric), self.run(b).per_user.get(metric)
        if va is None or vb is None:
            raise ConfigError(f"{metric!r} has no per-user values (list-set metrics cannot be paired).")
        ma, mb = float(np.mean(va)), float(np.mean(vb))
        return Comparison(
            a=a,
            b=b,
            metric=metric,
            mean_a=ma,
            mean_b=mb,
            relative=(ma / mb - 1.0) if mb > 0 else float("inf") if ma > 0 else 0.0,
            p_value=paired_test(va, vb),
            test="Wilcoxon signed-rank, two-sided",
            n_users=len(va),
        )

    def best(self, names: Sequence[str]) -> str | None:
        pool = [r for r in self.runs if r.name in names]
        if not pool:
            return None
        return max(pool, key=lambda r: r.overall.get(self.headline, float("-inf"))).name

    def headline_comparisons(self) -> list[Comparison]:
        """Best of ours vs the best other model, and each of ours vs that best other model."""
        peers = [r.name for r in self.runs if r.name not in self.ours]
        best_peer = self.best(peers)
        if best_peer is None or not self.ours:
            return []
        best_ours = self.best(self.ours)
        names = [best_ours] + [n for n in self.ours if n != best_ours]
        return [self.compare(n, best_peer) for n in names if n is not None]

    # -- output ------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "headline": self.headline,
            "ours": self.ours,
            "notes": self.notes,
            "results": [
                {
                    "model": r.name,
                    "class": r.model,
                    "config": r.config,
                    "tuned": r.tuned,
                    "trials": r.trials,
                    "metrics": r.overall,
                    "fit_seconds": round(r.fit_seconds, 3),
                    "rank_seconds": round(r.rank_seconds, 3),
                    "tune_seconds": round(r.tune_seconds, 3),
                }
                for r in self.runs
            ],
            "comparisons": [c.__dict__ for c in self.headline_comparisons()],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=_jsonable)

    def to_markdown(self, *, command: str | None = None) -> str:
        lines = [f"# {self.protocol['protocol']} on {self.protocol['dataset']}", ""]
        if command:
            lines += ["Command:", "", "```", command, "```", ""]
        lines += ["| protocol | |", "| --- | --- |"]
        for key, value in self.protocol.items():
            text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            lines.append(f"| {key} | {text.replace('|', '/')} |")
        lines.append("")
        metric_names = list(self.runs[0].overall) if self.runs else []
        lines.append("| model | " + " | ".join(metric_names) + " | tuned on validation | fit s |")
        lines.append("| --- |" + " ---: |" * len(metric_names) + " --- | ---: |")
        best = {m: max(r.overall[m] for r in self.runs) for m in metric_names}
        for r in self.runs:
            cells = []
            for m in metric_names:
                v = r.overall[m]
                cell = f"{v:.4f}"
                cells.append(f"**{cell}**" if v == best[m] and not m.startswith(("Novelty", "ILD")) else cell)
            tuned = ", ".join(f"{k}={v}" for k, v in r.tuned.items()) or "-"
            name = f"{r.name} (personas)" if r.name in self.ours else r.name
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {tuned} | {r.fit_seconds:.1f} |")
        comps = self.headline_comparisons()
        if comps:
            lines += ["", f"Paired tests on per-user {self.headline} ({comps[0].test}):", ""]
            lines += [
                "| ours | best other | ours | other | relative | p-value | users |",
                "| --- | --- |" + " ---: |" * 5,
            ]
            for c in comps:
                lines.append(
                    f"| {c.a} | {c.b} | {c.mean_a:.4f} | {c.mean_b:.4f} | {100 * c.relative:+.1f}% | "
                    f"{c.p_value:.2g} | {c.n_users} |"
                )
        if self.notes:
            lines += ["", *[f"- {n}" for n in self.notes]]
        return "\n".join(lines) + "\n"

    def save(self, folder: str | Path, stem: str, *, command: str | None = None) -> tuple[Path, Path]:
        """Write ``stem.md`` and ``stem.json`` atomically into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        md, js = folder / f"{stem}.md", folder / f"{stem}.json"
        payload = self.to_dict()
        payload["command"] = command
        write_atomic(md, self.to_markdown(command=command))
        write_atomic(js, json.dumps(payload, indent=2, default=_jsonable))
        return md, js


def _jsonable(value: object) -> object:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
