"""Typed tastes: does what a new user types change what they get, and does it fit?

    python bench/typed_tastes.py [--datasets ml-100k ml-latest-small] [--out docs/results/typed-tastes.md]

For each dataset the shipped demo pipeline (MiniLM int8 text + behaviour, k-means, the router) is run with
evaluation off, and every probe is encoded with the run's text encoder and answered by:

- most-popular (the same list for everyone);
- keyword-to-genre: genre names (and a few of their common word forms) found in the probe, items of those
  genres by popularity (popularity when none is found);
- plain retrieval: MiniLM cosine of the probe to every item's text (``item_documents``), no prior;
- TextMatch: the same cosine plus the popularity prior it chose on held users (personas' text part);
- the router (personas' default new-user model) through ``recommend_new(text=, vector=)`` in the library,
  through ``personas recommend --model RUN --text`` (the CLI, in process) and through ``POST /users`` (the
  HTTP service, in process, on the run folder the pipeline wrote).

Probes: genres named, genres only described, two tastes mixed (each with the genres it expects, fixed here in
advance), and "anything but X" (reported apart: only the share of items without X counts). Metrics: genre
precision@10 (the share of the top-10 items with an expected genre) beside each probe's base rate (that share
among the 200 most popular items), and the mean pairwise Jaccard of the probes' top-10 lists (1 = everyone gets
the same list).
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from personas.data import genre_tokens
from personas.encode import encode_query
from personas.pipeline import Pipeline, PipelineResult
from personas.pipeline.config import load_config
from personas.recommend import Recommender, TextMatch

console = Console()


@dataclass(frozen=True)
class Probe:
    kind: str  # named | described | mixed | not
    text: str
    genres: tuple[str, ...]  # expected genres (for "not": the genre to avoid)


# Genre names as the two datasets spell them; "Children" is ml-latest-small's "Children's".
NAMED = [
    Probe("named", "I love horror movies", ("Horror",)),
    Probe("named", "science fiction films please", ("Sci-Fi",)),
    Probe("named", "romantic movies", ("Romance",)),
    Probe("named", "westerns", ("Western",)),
    Probe("named", "war films", ("War",)),
    Probe("named", "animated movies", ("Animation",)),
    Probe("named", "documentaries", ("Documentary",)),
    Probe("named", "musicals", ("Musical",)),
    Probe("named", "crime films", ("Crime",)),
    Probe("named", "film noir", ("Film-Noir",)),
    Probe("named", "mystery movies", ("Mystery",)),
    Probe("named", "thrillers", ("Thriller",)),
    Probe("named", "comedies that make me laugh", ("Comedy",)),
    Probe("named", "action movies", ("Action",)),
    Probe("named", "fantasy films", ("Fantasy",)),
    Probe("named", "movies for children", ("Children's", "Children")),
    Probe("named", "adventure films", ("Adventure",)),
    Probe("named", "serious dramas", ("Drama",)),
]
DESCRIBED = [
    Probe("described", "films that scare me: haunted houses, monsters and slashers", ("Horror",)),
    Probe("described", "spaceships, aliens, robots and the distant future", ("Sci-Fi",)),
    Probe("described", "two people falling in love", ("Romance",)),
    Probe("described", "cowboys, gunslingers and the wild frontier", ("Western",)),
    Probe("described", "soldiers on the battlefield, the horror of combat", ("War",)),
    Probe("described", "cartoons and drawn characters, Disney and Pixar", ("Animation",)),
    Probe("described", "true stories filmed about real people and real events", ("Documentary",)),
    Probe("described", "characters break into song and dance numbers", ("Musical",)),
    Probe("described", "gangsters, heists, mobsters and the police", ("Crime",)),
    Probe("described", "shadowy detectives, femme fatales, 1940s black and white", ("Film-Noir",)),
    Probe("described", "a whodunit with clues and a puzzle to solve", ("Mystery",)),
    Probe("described", "edge of my seat suspense and danger", ("Thriller",)),
    Probe("described", "silly jokes and funny situations", ("Comedy",)),
    Probe("described", "explosions, car chases and fist fights", ("Action",)),
    Probe("described", "wizards, dragons, magic and quests", ("Fantasy",)),
    Probe("described", "something the whole family can watch with small kids", ("Children's", "Children")),
    Probe("described", "treasure hunts and journeys to far away lands", ("Adventure",)),
    Probe("described", "moving stories about hard lives and difficult choices", ("Drama",)),
]
MIXED = [
    Probe("mixed", "sci-fi and horror", ("Sci-Fi", "Horror")),
    Probe("mixed", "romantic comedies", ("Romance", "Comedy")),
    Probe("mixed", "animated musicals for the family", ("Animation", "Musical", "Children's", "Children")),
    Probe("mixed", "war dramas", ("War", "Drama")),
    Probe("mixed", "crime thrillers", ("Crime", "Thriller")),
    Probe("mixed", "action and adventure", ("Action", "Adventure")),
    Probe("mixed", "fantasy adventures with magic", ("Fantasy", "Adventure")),
    Probe("mixed", "mystery and film noir", ("Mystery", "Film-Noir")),
    Probe("mixed", "westerns and war movies", ("Western", "War")),
    Probe("mixed", "documentaries and dramas based on true events", ("Documentary", "Drama")),
    Probe("mixed", "scary science fiction with aliens", ("Sci-Fi", "Horror")),
    Probe("mixed", "funny romance, love stories that make me laugh", ("Romance", "Comedy")),
    Probe("mixed", "dark crime noir, gangsters, Scorsese and Tarantino", ("Crime", "Film-Noir", "Thriller")),
    Probe(
        "mixed",
        "romantic comedies, musicals and Disney animation for the family",
        ("Romance", "Comedy", "Musical", "Animation", "Children's", "Children"),
    ),
    Probe("mixed", "thrilling action with spies", ("Action", "Thriller")),
    Probe("mixed", "children's adventure stories", ("Children's", "Children", "Adventure")),
    Probe("mixed", "space adventures with laser battles", ("Sci-Fi", "Adventure", "Action")),
    Probe("mixed", "murder mysteries with a twist", ("Mystery", "Thriller", "Crime")),
    Probe("mixed", "musicals and romance", ("Musical", "Romance")),
    Probe("mixed", "monster movies that are also funny", ("Horror", "Comedy")),
]
MORE_DESCRIBED = [
    Probe("described", "outlaws and sheriffs in dusty towns", ("Western",)),
    Probe("described", "ghosts, vampires and things that go bump in the night", ("Horror",)),
    Probe("described", "time travel and other planets", ("Sci-Fi",)),
    Probe("described", "a detective unravels a murder", ("Mystery", "Crime")),
]
NOT = [
    Probe("not", "anything but horror", ("Horror",)),
    Probe("not", "no romance please", ("Romance",)),
    Probe("not", "I hate musicals", ("Musical",)),
    Probe("not", "anything except war movies", ("War",)),
    Probe("not", "nothing for children", ("Children's", "Children")),
]
PROBES = NAMED + DESCRIBED + MORE_DESCRIBED + MIXED + NOT
# Word forms the keyword peer recognises for each genre (lower case).
KEYWORDS = {
    "Horror": ("horror", "scary", "scare"),
    "Sci-Fi": ("sci-fi", "science fiction", "scifi"),
    "Romance": ("romance", "romantic", "love"),
    "Western": ("western", "cowboy", "cowboys"),
    "War": ("war",),
    "Animation": ("animation", "animated", "cartoon", "cartoons"),
    "Documentary": ("documentary", "documentaries"),
    "Musical": ("musical", "musicals"),
    "Crime": ("crime", "gangster", "gangsters"),
    "Film-Noir": ("noir",),
    "Mystery": ("mystery", "whodunit"),
    "Thriller": ("thriller", "thrillers", "thrilling", "suspense"),
    "Comedy": ("comedy", "comedies", "funny", "laugh"),
    "Action": ("action",),
    "Fantasy": ("fantasy", "magic", "wizards"),
    "Children's": ("children", "children's", "kids", "family"),
    "Children": ("children", "children's", "kids", "family"),
    "Adventure": ("adventure", "adventures"),
    "Drama": ("drama", "dramas"),
}


def through_cli(run_dir: Path, text: str) -> np.ndarray:
    """The item rows ``personas recommend --model RUN --text`` lists (read off its table)."""
    from typer.testing import CliRunner

    from personas.cli.main import app
    from personas.pipeline import load_run

    result = CliRunner().invoke(app, ["recommend", "--model", str(run_dir), "--text", text, "--n", "10"])
    if result.exit_code != 0:
        raise RuntimeError(f"personas recommend failed: {result.output}")
    ids = [
        line.split("│")[2].strip()
        for line in result.output.splitlines()
        if line.startswith("│ ") and line.split("│")[1].strip().isdigit()
    ]
    row = {str(i): r for r, i in enumerate(load_run(run_dir).items["item_id"].astype(str))}
    return np.array([row[i] for i in ids], dtype=np.int64)


def through_api(client: object, rows: dict[str, int], text: str) -> np.ndarray:
    """The item rows ``POST /users {"text": ...}`` recommends."""
    response = client.post("/users", json={"text": text, "n": 10})  # type: ignore[attr-defined]
    response.raise_for_status()
    return np.array([rows[r["item_id"]] for r in response.json()["recommendations"]["items"]], dtype=np.int64)


def run_pipeline(dataset: str) -> tuple[PipelineResult, Pipeline]:
    config = load_config(Path(__file__).parent.parent / "src" / "personas" / "pipeline" / "demo.toml")
    config = config.model_copy(
        update={
            "data": config.data.model_copy(update={"dataset": dataset}),
            "evaluate": config.evaluate.model_copy(update={"enabled": False}),
            "output": config.output.model_copy(update={"report": False, "dir": Path(tempfile.mkdtemp()) / "run"}),
        }
    )
    pipeline = Pipeline(config)
    return pipeline.run(), pipeline


def top10(scores: np.ndarray, tie_break: np.ndarray) -> np.ndarray:
    return np.argsort(-(scores + tie_break), kind="stable")[:10]


def keyword_scores(probe: Probe, genres: list[set[str]], popularity: np.ndarray) -> np.ndarray:
    text = probe.text.lower()
    found = {g for g, words in KEYWORDS.items() if any(w in text for w in words)}
    if not found:
        return popularity.copy()
    matches = np.array([bool(g & found) for g in genres])
    return popularity + matches * (popularity.max() + 1.0)


def evaluate(dataset: str) -> list[dict[str, object]]:
    start = time.perf_counter()
    result, pipeline = run_pipeline(dataset)
    encoder = pipeline.text_encoder_  # the run's text encoder: the bench measures what the run would do
    assert encoder is not None and pipeline.item_text_vectors_ is not None
    router: Recommender = result.models["router"]
    data = result.dataset
    genres = [set(g) for g in genre_tokens(data)]
    popularity = np.asarray(data.matrix("binary").sum(axis=0)).ravel().astype(np.float64)
    tie_break = router.tie_break_
    popular = np.argsort(-popularity, kind="stable")[:200]
    plain = TextMatch(priors=(0.0,)).fit(data, item_text_vectors=pipeline.item_text_vectors_)
    tuned = TextMatch().fit(data, item_text_vectors=pipeline.item_text_vectors_)
    vectors = np.vstack([encode_query(encoder, p.text) for p in PROBES])  # as the CLI and the service do
    lists: dict[str, list[np.ndarray]] = {m: [] for m in MODELS}
    from fastapi.testclient import TestClient

    from personas.api import ServeSettings, create_app
    from personas.api.testing import key_headers

    run_dir = Path(pipeline.config.output.dir)
    db = f"sqlite:///{run_dir.parent / 'serve.sqlite'}"
    settings = ServeSettings(model_dir=run_dir, database_url=db, rate_limit_per_key="", rate_limit_per_address="")
    rows = {str(i): r for r, i in enumerate(data.item_vocab.ids)}
    client = TestClient(create_app(settings), base_url="http://localhost", headers=key_headers(db)).__enter__()
    for probe, vector in zip(PROBES, vectors, strict=True):
        lists["router via CLI"].append(through_cli(run_dir, probe.text))
        lists["router via API"].append(through_api(client, rows, probe.text))
        lists["most-popular"].append(top10(popularity, tie_break))
        lists["keyword-to-genre"].append(top10(keyword_scores(probe, genres, popularity), tie_break))
        lists["plain retrieval"].append(top10(plain.vector_scores(vector.reshape(1, -1))[0], tie_break))
        lists["TextMatch (personas)"].append(top10(tuned.vector_scores(vector.reshape(1, -1))[0], tie_break))
        rec = router.recommend_new(text=probe.text, vector=np.asarray(vector, dtype=np.float64), n=10)
        lists["router (personas)"].append(rec.ids[0])
    rows = []
    for model, answers in lists.items():
        for kind in ("named", "described", "mixed", "not"):
            idx = [i for i, p in enumerate(PROBES) if p.kind == kind]
            precisions, bases = [], []
            for i in idx:
                want = set(PROBES[i].genres)
                hit = np.array([bool(genres[j] & want) for j in answers[i]])
                base = np.mean([bool(genres[j] & want) for j in popular])
                precisions.append(1.0 - hit.mean() if kind == "not" else hit.mean())
                bases.append(1.0 - base if kind == "not" else base)
            jaccard = np.mean(
                [
                    len(set(answers[a]) & set(answers[b])) / len(set(answers[a]) | set(answers[b]))
                    for a, b in itertools.combinations(idx, 2)
                ]
            )
            rows.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "probes": kind,
                    "n": len(idx),
                    "precision": float(np.mean(precisions)),
                    "base": float(np.mean(bases)),
                    "jaccard": float(jaccard),
                }
            )
    console.print(
        f"{dataset}: router text weight {getattr(router, 'text_weight_', float('nan')):g} "
        f"(trials {np.round(getattr(router, 'text_weight_trials_', np.zeros((3, 0))), 4).tolist()}), "
        f"TextMatch prior {tuned.prior_:g}; {time.perf_counter() - start:.0f} s"
    )
    return rows


MODELS = (
    "most-popular",
    "keyword-to-genre",
    "plain retrieval",
    "TextMatch (personas)",
    "router (personas)",
    "router via CLI",
    "router via API",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["ml-100k", "ml-latest-small"])
    parser.add_argument("--out", type=Path, default=None, help="Also write the table as markdown here.")
    args = parser.parse_args()
    rows = [row for dataset in args.datasets for row in evaluate(dataset)]
    table = Table(title="Typed tastes: genre precision@10 (for 'not': share without the genre) and Jaccard")
    for col in ("dataset", "probes", "n", "model", "precision@10", "base rate", "Jaccard"):
        table.add_column(col)
    lines = [
        "| dataset | probes | n | model | genre precision@10 | base rate (top-200 popular) | pairwise Jaccard |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for row in sorted(rows, key=lambda r: (str(r["dataset"]), str(r["probes"]), MODELS.index(str(r["model"])))):
        cells = [
            str(row["dataset"]),
            str(row["probes"]),
            str(row["n"]),
            str(row["model"]),
            f"{row['precision']:.3f}",
            f"{row['base']:.3f}",
            f"{row['jaccard']:.3f}",
        ]
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    console.print(table)
    if args.out is not None:
        header = [
            "# Typed tastes",
            "",
            "`python bench/typed_tastes.py --out docs/results/typed-tastes.md` "
            f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}). "
            "The demo pipeline per dataset (MiniLM int8 + behaviour, k-means, router; evaluation off); each probe "
            "encoded by the run's text encoder through encode_query (what a negation cue rules out is "
            "subtracted, as the CLI and the service do). Precision: share of the top-10 with an expected genre (for "
            "'not' probes: without the named genre); base rate: the same share among the 200 most popular "
            "items; Jaccard: mean over pairs of probes of the same kind.",
            "",
        ]
        args.out.write_text("\n".join(header + lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
