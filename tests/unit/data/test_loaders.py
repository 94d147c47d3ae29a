"""Loading every format, column mapping, and one test per malformed-input case."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from personas.data import load_dataset, load_recbole, read_table
from personas.errors import DataError


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


INTER_CSV = "userId,movieId,rating,timestamp\n1,10,4,100\n1,11,5,200\n2,10,3,150\n"


# ----------------------------------------------------------------------------------------- formats
def test_csv_with_column_mapping(tmp_path: Path) -> None:
    path = write(tmp_path / "ratings.csv", INTER_CSV)
    ds, report = load_dataset(path, columns={"interactions": {"user_id": "userId", "item_id": "movieId"}})
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (2, 2, 3)
    assert list(ds.user_vocab.ids) == ["1", "2"]
    assert ds.ratings.tolist() == [4.0, 5.0, 3.0]
    assert ds.timestamps.tolist() == [100, 200, 150]
    assert report.rows_read == {"interactions": 3}


def test_tsv_jsonl_parquet_give_the_same_dataset(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"], "rating": [1.0, 2.0, 3.0], "review": ["ok", "", "meh"]}
    )
    frame.to_csv(tmp_path / "i.tsv", sep="\t", index=False)
    with (tmp_path / "i.jsonl").open("w") as handle:
        for rec in frame.to_dict("records"):
            handle.write(json.dumps(rec) + "\n")
    frame.to_parquet(tmp_path / "i.parquet")
    loaded = [load_dataset(tmp_path / f"i.{ext}")[0] for ext in ("tsv", "jsonl", "parquet")]
    for ds in loaded:
        assert ds.fingerprint() == loaded[0].fingerprint()
        assert ds.reviews.tolist() == ["ok", None, "meh"]


def test_recbole_atomic_files(tmp_path: Path) -> None:
    write(
        tmp_path / "toy.inter",
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t5\t4\t10\n2\t5\t2\t11\n",
    )
    write(tmp_path / "toy.user", "user_id:token\tage:token\tgender:token\n1\t24\tM\n2\t53\tF\n")
    write(
        tmp_path / "toy.item", "item_id:token\tmovie_title:token_seq\tclass:token_seq\n5\tToy Story\tAnimation Comedy\n"
    )
    ds, _ = load_recbole(tmp_path, columns={"items": {"title": "movie_title"}})
    assert ds.name == "toy"
    assert ds.users["age"].tolist() == ["24", "53"]
    assert ds.items["title"].tolist() == ["Toy Story"]
    assert ds.items["class"].tolist() == ["Animation Comedy"]


def test_iso_timestamps_are_parsed_to_seconds(tmp_path: Path) -> None:
    path = write(tmp_path / "i.csv", "user_id,item_id,timestamp\n1,2,1970-01-01T00:01:40Z\n1,3,\n")
    ds, _ = load_dataset(path)
    assert ds.timestamps.tolist() == [100, -1]


def test_users_and_items_files_keep_attributes(tmp_path: Path) -> None:
    inter = write(tmp_path / "i.csv", "user_id,item_id\nu1,i1\n")
    users = write(tmp_path / "u.csv", "user_id,text,country\nu1,hello there,NL\nu2,,DE\n")
    items = write(tmp_path / "it.csv", "item_id,title\ni1,Thing\ni2,Other\n")
    ds, _ = load_dataset(inter, users=users, items=items)
    assert ds.n_users == 2 and ds.n_items == 2  # users and items without interactions are kept
    assert ds.user_texts() == ["hello there", None]
    assert ds.users["country"].tolist() == ["NL", "DE"]


def test_quoted_multiline_field_still_reports_the_right_line(tmp_path: Path) -> None:
    text = 'user_id,item_id,review,rating\n1,2,"long\nreview\ntext",5\n1,3,fine,bad\n'
    with pytest.raises(DataError, match=r"line 5, column 4 \('rating'\)"):
        load_dataset(write(tmp_path / "i.csv", text))


# ----------------------------------------------------------------------------------------- malformed input
def test_missing_required_column(tmp_path: Path) -> None:
    path = write(tmp_path / "i.csv", "user,item_id\n1,2\n")
    with pytest.raises(DataError) as info:
        load_dataset(path)
    message = str(info.value)
    assert str(path) in message and "line 1" in message
    assert "'user_id'" in message and "['user', 'item_id']" in message
    assert "columns={'user_id'" in message  # how to fix


def test_duplicate_user_ids(tmp_path: Path) -> None:
    inter = write(tmp_path / "i.csv", "user_id,item_id\n7,1\n")
    users = write(tmp_path / "u.csv", "user_id,age\n7,20\n8,30\n7,40\n")
    with pytest.raises(DataError) as info:
        load_dataset(inter, users=users)
    message = str(info.value)
    assert f"{users}, line 4, column 1 ('user_id')" in message
    assert "duplicate user id '7'" in message and "line 2" in message


def test_duplicate_item_ids_in_jsonl(tmp_path: Path) -> None:
    inter = write(tmp_path / "i.csv", "user_id,item_id\n7,1\n")
    items = write(tmp_path / "it.jsonl", '{"item_id": 1}\n\n{"item_id": 2}\n{"item_id": 1}\n')
    with pytest.raises(DataError, match=r"it\.jsonl, line 4, field 'item_id': duplicate item id '1'"):
        load_dataset(inter, items=items)


def test_unknown_ids_fail_by_default(tmp_path: Path) -> None:
    inter = write(tmp_path / "i.csv", "user_id,item_id\n1,a\n9,a\n9,b\n")
    users = write(tmp_path / "u.csv", "user_id\n1\n2\n")
    with pytest.raises(DataError) as info:
        load_dataset(inter, users=users)
    message = str(info.value)
    assert f"{inter}, line 3, column 1 ('user_id')" in message
    assert "'9'" in message and "2 interaction rows" in message and "unknown_ids='drop'" in message


def test_unknown_ids_dropped_and_counted(tmp_path: Path) -> None:
    inter = write(tmp_path / "i.csv", "user_id,item_id\n1,a\n9,a\n9,b\n2,z\n")
    users = write(tmp_path / "u.csv", "user_id\n1\n2\n")
    items = write(tmp_path / "it.csv", "item_id\na\nb\n")
    ds, report = load_dataset(inter, users=users, items=items, unknown_ids="drop")
    assert ds.n_interactions == 1
    assert (report.dropped_unknown_users, report.dropped_unknown_items) == (2, 1)
    assert "Dropped 3 of 4" in report.warnings[0]


@pytest.mark.parametrize("column", ["rating", "timestamp"])
def test_non_numeric_values(tmp_path: Path, column: str) -> None:
    path = write(tmp_path / "i.csv", f"user_id,item_id,{column}\n1,2,5\n1,3,five\n1,4,x\n")
    with pytest.raises(DataError) as info:
        load_dataset(path)
    message = str(info.value)
    assert f"{path}, line 3, column 3 ('{column}')" in message
    assert "'five'" in message and "2 such values" in message


def test_non_numeric_rating_in_parquet_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "i.parquet"
    pd.DataFrame({"user_id": ["1", "2"], "item_id": ["a", "b"], "rating": ["4", "good"]}).to_parquet(path)
    with pytest.raises(DataError, match=r"i\.parquet, row 2, field 'rating': rating 'good' is not a number"):
        load_dataset(path)


@pytest.mark.parametrize(
    ("content", "expected"), [(b"", "empty"), (b"\n  \n", "empty"), (b"user_id,item_id\n", "no data rows")]
)
def test_empty_files(tmp_path: Path, content: bytes, expected: str) -> None:
    path = write(tmp_path / "i.csv", content)
    with pytest.raises(DataError, match=expected) as info:
        load_dataset(path)
    assert str(path) in str(info.value)


def test_wrong_delimiter(tmp_path: Path) -> None:
    path = write(tmp_path / "i.csv", "user_id;item_id;rating\n1;2;5\n")
    with pytest.raises(DataError) as info:
        load_dataset(path)
    message = str(info.value)
    assert f"{path}, line 1" in message and "semicolon" in message and "delimiter=';'" in message
    ds, _ = load_dataset(path, delimiter=";")  # the suggested fix works
    assert ds.n_interactions == 1


def test_tab_separated_file_named_csv(tmp_path: Path) -> None:
    path = write(tmp_path / "i.csv", "user_id\titem_id\n1\t2\n")
    with pytest.raises(DataError, match="tab-separated"):
        load_dataset(path)


def test_undecodable_bytes(tmp_path: Path) -> None:
    path = write(tmp_path / "i.csv", b"user_id,item_id,review\n1,2,fine\n1,3,caf" + b"\xe9 ok\n")
    with pytest.raises(DataError) as info:
        load_dataset(path)
    message = str(info.value)
    assert f"{path}, line 3, column 8" in message and "\\xe9" in message and "encoding=" in message
    ds, _ = load_dataset(path, encoding="latin-1")
    assert ds.reviews[1] == "café ok"


@pytest.mark.parametrize("bad", ["", "   "])
def test_empty_ids(tmp_path: Path, bad: str) -> None:
    path = write(tmp_path / "i.csv", f"user_id,item_id\n1,2\n3,{bad}\n")
    with pytest.raises(DataError) as info:
        load_dataset(path)
    message = str(info.value)
    assert f"{path}, line 3, column 2 ('item_id')" in message and "empty item id" in message


def test_empty_id_in_jsonl_null(tmp_path: Path) -> None:
    path = write(tmp_path / "i.jsonl", '{"user_id": "1", "item_id": "2"}\n{"user_id": null, "item_id": "2"}\n')
    with pytest.raises(DataError, match=r"i\.jsonl, line 2, field 'user_id': empty user id \(missing\)"):
        load_dataset(path)


def test_invalid_json_line(tmp_path: Path) -> None:
    path = write(tmp_path / "i.jsonl", '{"user_id": "1", "item_id": "2"}\n{"user_id": "1", item_id: 2}\n')
    with pytest.raises(DataError, match=r"i\.jsonl, line 2, column 18: not valid JSON"):
        load_dataset(path)


def test_ragged_csv_row(tmp_path: Path) -> None:
    path = write(tmp_path / "i.csv", "user_id,item_id\n1,2\n1,2,3,4\n")
    with pytest.raises(DataError, match="as many fields as the header") as info:
        load_dataset(path)
    assert str(path) in str(info.value)


def test_unknown_mapping_key_and_missing_mapped_column(tmp_path: Path) -> None:
    path = write(tmp_path / "i.csv", "user_id,item_id\n1,2\n")
    with pytest.raises(DataError, match=r"not interactions fields. Allowed"):
        read_table(path, "interactions", columns={"userid": "user_id"})
    with pytest.raises(DataError, match=r"mapped column 'stars' \(for 'rating'\) is missing"):
        read_table(path, "interactions", columns={"rating": "stars"})


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot tell the format"):
        load_dataset(write(tmp_path / "i.xlsx", "x"))
    with pytest.raises(DataError, match="file not found"):
        load_dataset(tmp_path / "nope.csv")


def test_numeric_ids_from_parquet_become_plain_strings(tmp_path: Path) -> None:
    path = tmp_path / "i.parquet"
    pd.DataFrame({"user_id": [1.0, 2.0], "item_id": [10, 11]}).to_parquet(path)
    ds, _ = load_dataset(path)
    assert list(ds.user_vocab.ids) == ["1", "2"] and list(ds.item_vocab.ids) == ["10", "11"]
    assert np.isnan(ds.ratings).all()
