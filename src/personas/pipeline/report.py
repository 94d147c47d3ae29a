"""The HTML report: one self-contained file (plotly's JavaScript embedded), readable offline."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from sklearn.decomposition import PCA

from personas.describe import NameFidelity, Persona
from personas.discover import KChoice

__all__ = ["map_2d", "render_report"]

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:18px 32px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#c8cdd8;font-size:13px}
main{padding:24px 32px;max-width:1400px}section{margin-bottom:32px}
h2{font-size:18px;border-bottom:2px solid #dde1e8;padding-bottom:6px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:16px}
.card{background:#fff;border-radius:8px;padding:14px 16px;box-shadow:0 1px 3px rgba(0,0,0,.1);
border-top:5px solid var(--c)}.card h3{margin:0 0 4px;font-size:16px}.meta{color:#5b6478;font-size:12px}
.name-facts{color:#234;font-size:13px;margin:2px 0}
.kw span{display:inline-block;background:#eef1f6;border-radius:10px;padding:2px 8px;margin:2px;font-size:12px}
.card ul{padding-left:18px;margin:6px 0;font-size:13px}.card q{color:#39415a;font-style:italic}
table{border-collapse:collapse;background:#fff;font-size:13px}th,td{padding:5px 10px;border:1px solid #dde1e8}
th{background:#eef1f6;text-align:left}pre{background:#fff;padding:10px;font-size:12px;overflow:auto}
.tree{background:#fff;border-radius:8px;padding:10px 16px;list-style:none}.tree>li{margin:8px 0;
border-left:5px solid var(--c);padding-left:10px}.tree ul{margin:4px 0;padding-left:18px;font-size:13px}
.unstable{display:inline-block;background:#fde2e1;color:#a4161a;border-radius:8px;padding:1px 7px;font-size:11px}
"""
_PALETTE = [
    "#4C78A8",
    "#F58518",
    "#54A24B",
    "#E45756",
    "#72B7B2",
    "#EECA3B",
    "#B279A2",
    "#FF9DA6",
    "#9D755D",
    "#BAB0AC",
    "#1F77B4",
    "#2CA02C",
    "#D62728",
    "#9467BD",
    "#8C564B",
    "#E377C2",
    "#17BECF",
    "#BCBD22",
]


def colour(group: int) -> str:
    return "#999999" if group < 0 else _PALETTE[group % len(_PALETTE)]


def map_2d(vectors: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """2-D coordinates of the user vectors (PCA: fast, deterministic, faithful to global structure)."""
    if len(vectors) < 3:
        return np.zeros((len(vectors), 2))
    return PCA(n_components=2, random_state=seed).fit_transform(np.asarray(vectors, dtype=np.float64))


def _figure_html(fig: go.Figure, *, first: bool) -> str:
    return str(fig.to_html(full_html=False, include_plotlyjs=first, config={"displaylogo": False}))


def _map_figure(users: pd.DataFrame, personas: Sequence[Persona]) -> go.Figure:
    names = {p.group: p.display_name for p in personas}
    fig = go.Figure()
    # SVG up to a few thousand points (works without WebGL, e.g. headless or remote desktops); WebGL beyond.
    scatter = go.Scatter if len(users) <= 5000 else go.Scattergl
    for group in sorted(users["persona"].unique()):
        part = users[users["persona"] == group]
        label = names.get(int(group), "noise")
        fig.add_trace(
            scatter(
                x=part["x"],
                y=part["y"],
                mode="markers",
                name=f"{group}: {label}",
                marker={"color": colour(int(group)), "size": 6, "opacity": 0.75},
                text=part["user_id"],
                hovertemplate="user %{text}<extra>" + html.escape(label) + "</extra>",
            )
        )
    fig.update_layout(
        height=520,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        title="Users by persona (PCA)",
        legend={"font": {"size": 11}},
    )
    return fig


def _choose_k_figure(choice: KChoice) -> go.Figure:
    ks = [s.k for s in choice.scores]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=ks, y=[s.silhouette for s in choice.scores], name="silhouette", mode="lines+markers"))
    fig.add_trace(
        go.Scatter(x=ks, y=[s.stability for s in choice.scores], name="stability (ARI)", mode="lines+markers")
    )
    fig.add_vline(x=choice.k, line_dash="dash", annotation_text=f"chosen k={choice.k}")
    fig.update_layout(
        height=320, margin={"l": 10, "r": 10, "t": 30, "b": 10}, title=f"Choosing k ({choice.rule})", xaxis_title="k"
    )
    return fig


def _stability(persona: Persona) -> str:
    """The stability figure of a card, and a warning badge when it is below the run's threshold."""
    if persona.stability is None:
        return ""
    badge = " <span class='unstable'>unstable</span>" if persona.unstable else ""
    return f" · stability {persona.stability:.2f}{badge}"


def _tree(coarse: Sequence[Persona], fine: Sequence[Persona]) -> str:
    """Coarse personas with their fine sub-personas, sizes, names and stability."""
    e = html.escape
    by_group = {p.group: p for p in fine}
    rows = []
    for c in coarse:
        children = "".join(
            f"<li class='tree-fine' data-group='{f.group}'>{f.group}. {e(f.display_name)} "
            f"<span class='meta'>{f.size} users · {100 * f.share:.1f}%{_stability(f)}</span></li>"
            for f in (by_group[g] for g in c.children if g in by_group)
        )
        rows.append(
            f"<li class='tree-coarse' style='--c:{colour(c.group)}' data-group='{c.group}'><b>{e(c.display_name)}</b> "
            f"<span class='meta'>{c.size} users · {100 * c.share:.1f}% · {len(c.children)} sub-personas"
            f"{_stability(c)}</span><ul>{children}</ul></li>"
        )
    return f"<ul class='tree'>{''.join(rows)}</ul>"


def _levels_table(levels: dict[str, Any]) -> str:
    """How each level's k was chosen: the fine level's validation scores, the coarse level's cut scores."""
    e = html.escape
    tree = levels.get("hierarchy")
    if not tree:
        return ""
    fine, coarse = tree["fine"], tree["coarse"]
    parts = []
    by = fine["chosen_by"]
    if isinstance(by, dict):
        frame = pd.DataFrame(by["scores"]).set_index("k")
        parts.append(
            f"<p>Fine personas: k = {fine['k']}, {e(by['rule'])} ({e(by['metric'])}; {e(by['protocol'])}).</p>"
            + _table(frame)
        )
    else:
        parts.append(f"<p>Fine personas: k = {fine['k']} ({e(str(by))}).</p>")
    cut = coarse["chosen_by"]
    columns = ["k", "silhouette", "stability", "largest_share"]
    frame = pd.DataFrame(cut["scores"], columns=columns).set_index("k") if cut["scores"] else pd.DataFrame()
    parts.append(f"<p>Coarse personas: k = {coarse['k']}, {e(cut['rule'])}.</p>" + (_table(frame, digits=3)))
    return "".join(parts)


def _card(persona: Persona, parents: dict[int, Persona] | None = None) -> str:
    e = html.escape
    keywords = "".join(f"<span>{e(k.term)}</span>" for k in persona.keywords[:10])
    quotes = "".join(
        f"<li>user {e(r.user_id)}: <q>{e(r.quote)}</q></li>" for r in persona.representatives[:3] if r.quote
    )
    items = "".join(
        f"<li>{e(i.title)} <span class='meta'>lift {i.lift:.1f}, {i.users} users</span></li>"
        for i in persona.distinctive_items[:5]
    )
    skew = "".join(
        f"<li>{e(a.attribute)} = {e(a.value)} <span class='meta'>{100 * a.share_in_group:.0f}% vs "
        f"{100 * a.share_overall:.0f}% overall</span></li>"
        for a in persona.attribute_skew[:4]
    )
    facts = " · ".join(e(f.evidence) for f in persona.name_facts)
    names = [f"name from: {e(persona.name_source)}"]
    if persona.generated_name:
        names.append(f"composed name: {e(persona.name)}")
    if persona.keyword_name and persona.keyword_name != persona.display_name:
        names.append(f"keyword name: {e(persona.keyword_name)}")
    if persona.name_check:
        names.append(f"generated name {e(persona.name_check)}")
    return (
        f"<div class='card persona-card' style='--c:{colour(persona.group)}' data-group='{persona.group}'"
        f" data-level='{persona.level or 'fine'}'>"
        f"<h3>{persona.group}. {e(persona.display_name)}</h3>"
        + (f"<div class='name-facts'>{facts}</div>" if facts else "")
        + f"<div class='meta'>{' · '.join(names)}</div>"
        f"<div class='meta'>{persona.size} users · {100 * persona.share:.1f}%{_stability(persona)}</div>"
        + (
            f"<div class='meta'>in {e(parents[persona.parent].display_name)}</div>"
            if parents and persona.parent is not None and persona.parent in parents
            else ""
        )
        + f"<div class='kw'>{keywords}</div>"
        + (f"<b>Distinctive items</b><ul>{items}</ul>" if items else "")
        + (f"<b>Over-represented</b><ul>{skew}</ul>" if skew else "")
        + (f"<b>Representative users</b><ul>{quotes}</ul>" if quotes else "")
        + "</div>"
    )


def _fidelity_section(fidelity: NameFidelity) -> str:
    """The names' fidelity: one line of explanation, the headline figures and each persona's AUC."""
    e = html.escape

    def num(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}"

    rows = "".join(
        f"<tr><td>{p.group}</td><td>{e(p.name)}</td><td>{p.size}</td><td>{num(p.auc)}</td>"
        f"<td>{num(p.matched)}</td><td>{'-' if p.closest_name is None else p.closest_name}</td></tr>"
        for p in fidelity.personas
    )
    return (
        "<section id='name-fidelity'><h2>Name fidelity</h2>"
        "<p>Do the names point at their members? Each name is encoded like the users' texts and every user is "
        "ranked by similarity to it: AUC is the chance a member ranks above a non-member (0.5 says nothing, 1 is "
        "perfect); the matcher gives each user the closest name, as a reader with only the names would.</p>"
        f"<p class='meta'>Names encoded by {e(fidelity.encoder)}; users: {e(fidelity.users)}, "
        f"{fidelity.n_users:,} scored.</p>"
        "<table><tr><th>mean AUC</th><th>worst AUC</th><th>matcher accuracy</th><th>chance (biggest / 1/k)</th>"
        "<th>most similar two names (cosine)</th></tr>"
        f"<tr><td>{num(fidelity.mean_auc)}</td><td>{num(fidelity.worst_auc)}</td>"
        f"<td>{num(fidelity.matcher_accuracy)}</td>"
        f"<td>{num(fidelity.chance_majority)} / {num(fidelity.chance_uniform)}</td>"
        f"<td>{num(fidelity.max_name_similarity)}"
        + ("" if fidelity.closest_pair is None else f" ({fidelity.closest_pair[0]} and {fidelity.closest_pair[1]})")
        + "</td></tr></table>"
        "<details><summary>Each persona</summary><table><tr><th>persona</th><th>name</th><th>users</th>"
        f"<th>AUC</th><th>matched to its name</th><th>closest other name</th></tr>{rows}</table></details>"
        "</section>"
    )


def _table(frame: pd.DataFrame, *, digits: int = 4) -> str:
    return str(frame.to_html(float_format=lambda v: f"{v:.{digits}f}", border=0, escape=True))


def render_report(
    *,
    title: str,
    subtitle: str,
    users: pd.DataFrame,
    personas: Sequence[Persona],
    choice: KChoice | None,
    quality: dict[str, Any],
    coarse_personas: Sequence[Persona] = (),
    levels: dict[str, Any] | None = None,
    metrics_markdown: str,
    metrics: pd.DataFrame | None,
    per_persona: pd.DataFrame | None,
    timings: dict[str, float],
    fidelity: NameFidelity | None = None,
) -> str:
    """The report as one HTML string (about 5 MB: plotly's JavaScript is embedded so it works offline)."""
    e = html.escape
    parts = [f"<section><h2>Persona map</h2>{_figure_html(_map_figure(users, personas), first=True)}</section>"]
    levels = levels or {}
    if coarse_personas:
        parts.append(f"<section><h2>Persona tree</h2>{_tree(coarse_personas, personas)}</section>")
        parents = {c.group: c for c in coarse_personas}
        parts.append(
            "<section><h2>Coarse personas (for reading)</h2>"
            f"<div class='cards'>{''.join(_card(p) for p in coarse_personas)}</div></section>"
        )
        parts.append(
            "<section><h2>Fine personas (for recommending)</h2>"
            f"<div class='cards'>{''.join(_card(p, parents) for p in personas)}</div></section>"
        )
        parts.append(f"<section><h2>Number of personas at each level</h2>{_levels_table(levels)}</section>")
    else:
        parts.append(
            f"<section><h2>Personas</h2><div class='cards'>{''.join(_card(p) for p in personas)}</div></section>"
        )
    stability = levels.get("stability")
    if stability:
        flagged = [p.group for p in personas if p.unstable]
        parts.append(
            "<section><h2>Stability</h2>"
            f"<p>{e(stability['method'])}. Personas below {stability['threshold']:.2f} are marked unstable"
            + (f": {', '.join(map(str, flagged))}." if flagged else "; none is.")
            + "</p></section>"
        )
    if fidelity is not None:
        parts.append(_fidelity_section(fidelity))
    if choice is not None:
        parts.append(
            f"<section><h2>Number of personas</h2>{_figure_html(_choose_k_figure(choice), first=False)}</section>"
        )
    quality_rows = {k: v for k, v in quality.items() if isinstance(v, int | float) and v is not None}
    grouping = quality.get("grouping") or {}  # the finder's check of its own result
    if "largest_share" in grouping:
        quality_rows["largest_share"] = grouping["largest_share"]
    warned = "".join(f"<li>{e(w)}</li>" for w in grouping.get("warnings", []))
    parts.append(
        "<section><h2>Group quality</h2>"
        + _table(pd.DataFrame([quality_rows]), digits=3)
        + (f"<p>Warnings:</p><ul>{warned}</ul>" if warned else "")
        + "</section>"
    )
    if metrics is not None:
        parts.append(
            "<section><h2>Recommendation quality</h2>"
            + _table(metrics)
            + f"<details><summary>Protocol and full report</summary><pre>{e(metrics_markdown)}</pre></details>"
            + "</section>"
        )
    if per_persona is not None:
        parts.append(
            "<section><h2>Recommendation quality per persona (NDCG@10)</h2>" + _table(per_persona) + "</section>"
        )
    timing_frame = pd.DataFrame({"seconds": timings}).T
    parts.append(f"<section><h2>Run time</h2>{_table(timing_frame, digits=1)}</section>")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{e(title)}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>{e(title)}</h1><p>{e(subtitle)}</p></header><main>{''.join(parts)}</main></body></html>"
    )
