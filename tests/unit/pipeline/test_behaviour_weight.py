"""behaviour_weight = "auto" (the default) in a run: reviews with one product each carry no behaviour signal,
so the run groups by text and its manifest says why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import normalized_mutual_info_score

FILLER = ["good", "bad", "ok", "great", "taste", "price", "order", "box", "arrived", "fresh", "love", "buy", "again"]
TOPICS = {
    "coffee": "dark roast coffee beans espresso brew grind",
    "tea": "green tea leaves oolong steep herbal",
    "cats": "cat food kitten treats litter salmon",
}


def test_one_interaction_per_user_is_grouped_by_text(tmp_path: Path, run_pipeline: Any) -> None:
    rng = np.random.default_rng(0)
    folder = tmp_path / "reviews"
    folder.mkdir()
    rows, truth = ["reviewer,product,review"], {}
    for t, (topic, words) in enumerate(TOPICS.items()):
        vocabulary = words.split()
        for j in range(30):
            user = f"r-{topic}-{j}"
            text = " ".join(rng.choice(vocabulary, size=3)) + " " + " ".join(rng.choice(FILLER, size=4))
            rows.append(f"{user},p-{topic}-{j},{text}")  # every product reviewed once: nobody shares an item
            truth[user] = t
    (folder / "reviews.csv").write_text("\n".join(rows) + "\n")
    config = folder / "run.toml"
    config.write_text(
        f"""
[data]
interactions = "reviews.csv"
[data.columns.interactions]
user_id = "reviewer"
item_id = "product"
[encode]
kind = "tfidf"
[discover]
k = 3
[recommend]
models = ["most-popular"]
[evaluate]
enabled = false
[output]
dir = "{folder / "run"}"
report = false
"""
    )
    # the old default, behaviour_weight = 0.5, put these users in groups with NMI 0.45 to their topics
    result = run_pipeline(config, tmp_path).result
    choice = result.weight_choice
    assert choice is not None and choice.weight == 0.0
    labels = dict(zip(result.dataset.user_vocab.ids, result.labels, strict=True))
    assert normalized_mutual_info_score([truth[u] for u in labels], list(labels.values())) == 1.0
    manifest = json.loads((folder / "run" / "manifest.json").read_text())
    assert manifest["encoder"]["behaviour_weight"] == 0.0
    recorded = manifest["encoder"]["behaviour_weight_choice"]
    assert recorded["weight"] == 0.0 and "stable" in recorded["rule"]
    assert [s["weight"] for s in recorded["scores"]] == [0.0, 0.25, 0.5, 0.75]
    assert manifest["config"]["encode"]["behaviour_weight"] == "auto"
