"""Profile texts in Spark SQL: the user's own text, a demographics sentence and behaviour as text
("liked: Star Wars (1977) [Sci-Fi]; ..."), within a token budget, following :class:`ProfileConfig`.

The single-machine builder is the reference; this one follows its rules (templates with absent fields
dropped word by word, value maps, liked = rating >= min_rating or else the user's best-rated items, newest
first, item texts added while the token estimate fits). Review and tag parts are not built here.
"""

from __future__ import annotations

import re
import string
from typing import TYPE_CHECKING

from personas.data import ProfileConfig

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from personas.spark._data import SparkData

__all__ = ["build_profiles_sql"]

#: the tokens of personas.data.count_tokens: words, and punctuation marks one by one
_TOKEN_REGEX = r"\w+|[^\w\s]"


def _template(template: str, columns: list[str], maps: dict[str, dict[str, str]]) -> Column:
    """A Column filling ``template``; a word whose field is absent (null or empty) is dropped whole."""
    from pyspark.sql import functions as sf

    words: list[Column] = []
    for word in template.split():
        parts: list[Column] = []
        fields: list[Column] = []
        for literal, field, _, _ in string.Formatter().parse(word):
            if literal:
                parts.append(sf.lit(literal))
            if field is None:
                continue
            value = sf.col(f"`{field}`").cast("string") if field in columns else sf.lit(None).cast("string")
            value = sf.when(sf.trim(value) == "", None).otherwise(value)
            if maps.get(field):
                mapping = sf.create_map(*[sf.lit(x) for pair in maps[field].items() for x in pair])
                value = sf.coalesce(mapping[value], value)
            parts.append(value)
            fields.append(value)
        whole = sf.concat(*parts) if parts else sf.lit("")  # concat is null when any field is null
        words.append(whole if fields else sf.lit(word))
    text = sf.concat_ws(" ", *words)
    # a template that is all fields, none present, leaves only literal words; empty brackets are removed
    return sf.trim(sf.regexp_replace(sf.regexp_replace(text, r"\(\s*\)|\[\s*\]|\{\s*\}", ""), r"\s+", " "))


def _tokens(column: Column) -> Column:
    from pyspark.sql import functions as sf

    return sf.size(sf.regexp_extract_all(column, sf.lit(_TOKEN_REGEX), 0))


def build_profiles_sql(data: SparkData, config: ProfileConfig | None = None) -> DataFrame:
    """``user_row``, ``user_id``, ``text``: one profile text per user (empty where nothing is known)."""
    from pyspark.sql import functions as sf

    config = config or ProfileConfig()
    users = data.users
    item_text = _template(config.item_template, data.items.columns, config.value_maps)
    items = data.items.select("item_row", item_text.alias("item_text")).filter(sf.col("item_text") != "")
    inter = data.interactions
    best = inter.groupBy("user_row").agg(sf.max("rating").alias("_best"))
    chosen = inter.join(best, on="user_row")
    if config.min_rating is not None:
        liked = sf.col("rating") >= config.min_rating
        # users who never rated that high: their highest-rated items; unrated interactions all count
        fallback = (sf.col("_best") < config.min_rating) & (sf.col("rating") == sf.col("_best"))
        chosen = chosen.filter(sf.col("_best").isNull() | liked | fallback)
    chosen = (
        chosen.join(sf.broadcast(items), on="item_row")
        .groupBy("user_row", "item_row", "item_text")
        .agg(sf.max(sf.coalesce("timestamp", sf.lit(-1))).alias("ts"))
    )
    per_user = chosen.groupBy("user_row").agg(
        sf.sort_array(
            sf.collect_list(sf.struct((-sf.col("ts")).alias("neg_ts"), "item_row", "item_text")), asc=True
        ).alias("liked")
    )
    parts: dict[str, Column] = {}
    if "text" in users.columns:
        parts["text"] = sf.coalesce(sf.col("text").cast("string"), sf.lit(""))
    parts["demographics"] = _template(config.demographics_template, users.columns, config.value_maps)
    order = [p for p in config.parts if p in ("text", "demographics")]
    before = sf.concat_ws(config.part_separator, *[sf.when(parts[p] != "", parts[p]) for p in order if p in parts])
    frame = users.select("user_row", "user_id", before.alias("before")).join(per_user, on="user_row", how="left")
    if "behaviour" in config.parts:
        empty_template = config.behaviour_template.replace("{items}", "")
        sep_tokens = len(_token_count_py(config.item_separator))
        overhead = len(_token_count_py(empty_template)) + len(_token_count_py(config.part_separator))
        budget = sf.lit(config.max_tokens - overhead) - _tokens(sf.col("before"))
        # add item texts newest first while the estimate fits; the first that does not fit ends the list
        start = sf.struct(
            sf.lit(0).alias("n"), sf.array().cast("array<string>").alias("out"), sf.lit(False).alias("full")
        )

        def step(acc: Column, x: Column) -> Column:
            cost = acc["n"] + _tokens(x["item_text"]) + sf.when(sf.size(acc["out"]) > 0, sep_tokens).otherwise(0)
            fits = (~acc["full"]) & (cost <= budget)
            return sf.when(
                fits,
                sf.struct(
                    cost.alias("n"),
                    sf.concat(acc["out"], sf.array(x["item_text"])).alias("out"),
                    sf.lit(False).alias("full"),
                ),
            ).otherwise(sf.struct(acc["n"].alias("n"), acc["out"].alias("out"), sf.lit(True).alias("full")))

        names = sf.aggregate(sf.coalesce(sf.col("liked"), sf.array()), start, step)["out"]
        prefix, _, suffix = config.behaviour_template.partition("{items}")
        joined = sf.concat(sf.lit(prefix), sf.array_join(names, config.item_separator), sf.lit(suffix))
        behaviour = sf.when(sf.size(names) > 0, joined)
        frame = frame.withColumn("behaviour", behaviour)
    else:
        frame = frame.withColumn("behaviour", sf.lit(None).cast("string"))
    # own text and demographics first, then behaviour (the default order of ProfileConfig.parts)
    text = sf.concat_ws(config.part_separator, *[sf.when(p != "", p) for p in (sf.col("before"), sf.col("behaviour"))])
    return frame.select("user_row", "user_id", sf.coalesce(text, sf.lit("")).alias("text"))


def _token_count_py(text: str) -> list[str]:
    return re.findall(_TOKEN_REGEX, text)
