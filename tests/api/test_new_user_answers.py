"""New users' answers stay byte for byte what they were before the new-user path was made faster.

``new_user_answers.json`` holds the JSON bodies that the code before that change (commit 5f1892c) gave on the
example run folder (TF-IDF text, router), for a set of new users: text only (a taste, a sentence, a negation,
a long paragraph), items only (one, a few, enough for the warm route), text and items, then their GET
recommendations and after more events; and run users with events since the run. Regenerate it only for an
intended change of the answers:

    PYTHONPATH=src .venv/bin/python tests/api/test_new_user_answers.py RUN_DIR tests/api/new_user_answers.json

where RUN_DIR is ``personas.api.testing.write_example_run(RUN_DIR)``. The same script, run with the old and the
new code on a real run folder (e.g. runs/demo, MiniLM text), compares the two on real data.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from personas.api import ServeSettings
from personas.api.service import PersonaService

GOLDEN = Path(__file__).with_name("new_user_answers.json")

TEXTS = [
    "science fiction",
    "space",
    "a student who watches westerns and horror films, and now and then musicals",
    "thrillers or fantasy, but no horror films",
    "anything but romance",
    "I am a retired engineer; at the weekend I watch crime stories, sometimes space operas, and I keep a list of "
    "love stories. " * 5,
    "zzzz qqqq",
]


def answers(run_dir: Path, database_dir: Path) -> dict[str, str]:
    """Each case's JSON body(ies), new users' ids replaced by their case number (they are random)."""
    service = PersonaService(ServeSettings(model_dir=run_dir, database_url=f"sqlite:///{database_dir / 'answers.db'}"))
    try:
        return _answers(service)
    finally:
        service.close()


def _answers(service: PersonaService) -> dict[str, str]:
    popular = [service.item_ids[int(r)] for r in service.popular_order]
    middle = popular[len(popular) // 3 :]
    warm = int(getattr(service.model, "min_history_", 5))
    item_sets = [
        popular[:1],
        middle[:1],
        popular[-1:],
        middle[:2],
        middle[3:6],
        popular[1 : 1 + max(warm - 1, 1)],
        middle[:warm],
        middle[: warm + 4],
    ]
    out: dict[str, str] = {}
    created: list[tuple[str, str]] = []

    def create(case: str, text: str | None, items: list[str], n: int) -> None:
        body = service.create_user(text, items, n).model_dump_json()
        user_id = json.loads(body)["user_id"]
        created.append((case, user_id))
        out[case] = body.replace(user_id, case)

    for i, text in enumerate(TEXTS):
        create(f"text{i}", text, [], 10)
    for i, items in enumerate(item_sets):
        create(f"items{i}", None, items, 10)
    for i, text in enumerate(TEXTS[:4]):
        for j, items in enumerate((item_sets[0], item_sets[4], item_sets[6])):
            create(f"text{i}+items{j}", text, items, 7 + j)
    create("empty text+items", "", item_sets[3], 10)
    create("text n=20", TEXTS[2], [], 20)
    for case, user_id in created:
        for n in (3, 10):
            body, _ = service.recommendations_json(user_id, n)
            out[f"{case} GET n={n}"] = body.decode().replace(user_id, case)
    for case, user_id in created[:: max(len(created) // 6, 1)]:
        service.add_events(user_id, middle[7:9], "view")
        body, _ = service.recommendations_json(user_id, 10)
        out[f"{case} +events GET"] = body.decode().replace(user_id, case)
    for index in (0, len(service.user_ids) // 2):
        user_id = str(service.user_ids[index])
        for n in (5, 25):
            out[f"run user {index} n={n}"] = service.recommendations_json(user_id, n)[0].decode()
        service.add_events(user_id, middle[10:12], "view")
        out[f"run user {index} +events"] = service.recommendations_json(user_id, 10)[0].decode()
    return out


def test_new_users_answers_are_unchanged(run_dir: Path, tmp_path: Path) -> None:
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    got = answers(run_dir, tmp_path)
    assert sorted(got) == sorted(expected)
    changed = [case for case in expected if got[case] != expected[case]]
    assert not changed, f"{len(changed)} of {len(expected)} answers changed, e.g. {changed[:3]}"


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        result = answers(Path(sys.argv[1]), Path(folder))
    Path(sys.argv[2]).write_text(json.dumps(result, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{len(result)} answers written to {sys.argv[2]}")
