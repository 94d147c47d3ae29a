"""Persona cards from Spark aggregations: keywords from per-group term counts (class-based TF-IDF),
distinctive items by lift with a support floor, attribute skew, representatives nearest the centroid.

The rules and parameters are those of :mod:`personas.describe` (``DescribeConfig``); only the top rows of
each group are collected to the driver. Keywords follow the single-machine analyser term for term: words and
n-grams within a phrase (never across punctuation), n-grams neither starting nor ending with a stop word or
boilerplate (a word in more than ``max_df`` of texts); names are :func:`personas.describe.distinct_names`.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np

from personas.describe import (
    AttributeSkew,
    DescribeConfig,
    DistinctiveItem,
    Keyword,
    Persona,
    Representative,
    distinct_names,
    quote,
)
from personas.describe.keywords import PHRASE_END_PATTERN, STOP_WORDS, TOKEN_PATTERN

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from personas.spark._data import SparkData

__all__ = ["describe_groups_spark"]

# the keyword rules of personas.describe.keywords in Java regexes: (?U) makes \w, \b and \s Unicode-aware there
_WORD = f"(?U){TOKEN_PATTERN}"
_PHRASE_END = f"(?U){PHRASE_END_PATTERN}"


def _top(frame: DataFrame, by: list[Column], n: int) -> DataFrame:
    from pyspark.sql import Window
    from pyspark.sql import functions as sf

    window = Window.partitionBy("group").orderBy(*by)
    return frame.withColumn("_rank", sf.row_number().over(window)).filter(sf.col("_rank") <= n)


def _analysed_terms(text: Column, stop: list[str], ngram_max: int) -> Column:
    """The terms of :func:`personas.describe.keywords._analyzer` as an array Column: lower-cased words not in
    ``stop``, and n-grams (2..``ngram_max``) within a phrase whose first and last words are not in ``stop``."""
    from pyspark.sql import functions as sf

    def edge(word: Column) -> Column:
        return ~word.isin(stop)

    def ngrams(words: Column, size: int) -> Column:
        starts = sf.when(sf.size(words) >= size, sf.sequence(sf.lit(1), sf.size(words) - size + 1)).otherwise(
            sf.array().cast("array<int>")
        )
        # one parameter only: pyspark reads a lambda's arity (a second one would be the element's index)
        grams = sf.transform(
            starts,
            lambda i: sf.when(
                edge(sf.element_at(words, i)) & edge(sf.element_at(words, i + size - 1)),
                sf.array_join(sf.slice(words, i, size), " "),
            ),
        )
        return sf.filter(grams, lambda t: t.isNotNull())

    def phrase_terms(words: Column) -> Column:
        parts = [sf.filter(words, edge)] + [ngrams(words, size) for size in range(2, ngram_max + 1)]
        return sf.concat(*parts) if len(parts) > 1 else parts[0]

    phrases = sf.split(sf.lower(text), _PHRASE_END)
    words = sf.transform(phrases, lambda p: sf.regexp_extract_all(p, sf.lit(_WORD), 0))
    return sf.flatten(sf.transform(words, phrase_terms))


def keywords_spark(texts: DataFrame, labels: DataFrame, n_groups: int, config: DescribeConfig) -> list[list[Keyword]]:
    """``texts`` (``user_row``, ``text``), ``labels`` (``user_row``, ``group``): the keywords of
    :func:`personas.describe.class_keywords`, term for term, from Spark aggregations."""
    from pyspark.sql import functions as sf

    cfg = config.keywords
    stop = sorted(STOP_WORDS | {w.lower() for w in cfg.extra_stop_words})
    n_docs = texts.filter(sf.col("text").rlike(r"(?U)\S")).count()
    if n_docs == 0 or n_groups == 0:
        return [[] for _ in range(n_groups)]
    max_df = cfg.max_df if n_docs * cfg.max_df >= 1 else 1.0
    # pass 1: boilerplate words (in more than max_df of texts) become stop words, also inside n-grams
    words = sf.array_distinct(_analysed_terms(sf.col("text"), stop, 1))
    unigrams = texts.select("user_row", sf.explode(words).alias("t"))
    boiler = [r["t"] for r in unigrams.groupBy("t").count().filter(sf.col("count") > max_df * n_docs).collect()]
    terms = texts.select(
        "user_row", sf.explode(_analysed_terms(sf.col("text"), sorted({*stop, *boiler}), cfg.ngram_max)).alias("term")
    ).persist()
    doc_freq = terms.distinct().groupBy("term").count().filter(sf.col("count") >= min(cfg.min_df, n_docs))
    per_group = (
        terms.join(doc_freq.select("term"), on="term")
        .join(labels.filter("group >= 0"), on="user_row")
        .groupBy("group", "term")
        .agg(sf.count("*").cast("double").alias("c"))
        .persist()
    )
    totals = per_group.groupBy("group").agg(sf.sum("c").alias("total"))
    with_tf = per_group.join(totals, on="group").withColumn("tf", sf.col("c") / sf.col("total"))
    # per term: frequency over all groups, and the two largest group shares (contrast = tf / the largest
    # share in any other group; groups without the term have share 0)
    per_term = with_tf.groupBy("term").agg(
        sf.sum("c").alias("f"), sf.sort_array(sf.collect_list("tf"), asc=False).alias("shares")
    )
    grand = per_group.agg(sf.sum("c")).collect()[0][0] or 0.0
    avg = grand / max(n_groups, 1)
    top1 = sf.element_at("shares", 1)
    top2 = sf.coalesce(sf.try_element_at("shares", sf.lit(2)), sf.lit(0.0)) if n_groups > 1 else sf.lit(0.0)
    others = sf.when(sf.col("tf") >= top1, top2).otherwise(top1) if n_groups > 1 else sf.lit(0.0)
    scored = (
        with_tf.join(per_term, on="term")
        .withColumn("score", sf.col("tf") * sf.log1p(sf.lit(avg) / sf.col("f")))
        # over-represented in the group: its share of the group's words >= min_lift x its share overall
        .filter(sf.col("tf") >= cfg.min_lift * sf.col("f") / sf.lit(max(grand, 1.0)))
        # no other group uses it more (contrast >= min_contrast)
        .filter(sf.col("tf") >= sf.lit(cfg.min_contrast) * others)
        .filter(sf.col("score") > 0)
        .withColumn("contrast", sf.when(others > 0, sf.col("tf") / others))
        .withColumn("n_words", sf.size(sf.split("term", " ")))
    )
    top = _top(scored, [sf.desc("score"), sf.desc("n_words"), sf.asc("term")], cfg.n_keywords).collect()
    per_group.unpersist()
    terms.unpersist()
    out: list[list[Keyword]] = [[] for _ in range(n_groups)]
    for row in sorted(top, key=lambda r: (r["group"], r["_rank"])):
        contrast = None if row["contrast"] is None else float(row["contrast"])
        out[int(row["group"])].append(Keyword(term=str(row["term"]), score=float(row["score"]), contrast=contrast))
    return out


def distinctive_items_spark(
    data: SparkData, labels: DataFrame, sizes: np.ndarray, config: DescribeConfig
) -> list[list[DistinctiveItem]]:
    from pyspark.sql import functions as sf

    cfg = config.facts
    liked = data.interactions
    if cfg.min_rating is not None:
        liked = liked.filter(sf.col("rating").isNull() | (sf.col("rating") >= cfg.min_rating))
    pairs = liked.select("user_row", "item_row").distinct().persist()
    overall = pairs.groupBy("item_row").agg((sf.count("*") / sf.lit(max(data.n_users, 1))).alias("overall"))
    size_map = sf.create_map(*[sf.lit(x) for g, s in enumerate(sizes) for x in (g, int(s))])
    support = (
        pairs.join(labels.filter("group >= 0"), on="user_row")
        .groupBy("group", "item_row")
        .agg(sf.count("*").alias("support"))
        .withColumn("size", size_map[sf.col("group")])
        .withColumn("share", sf.col("support") / sf.greatest(sf.col("size"), sf.lit(1)))
        .join(overall, on="item_row")
        .withColumn("lift", sf.col("share") / sf.col("overall"))
        .filter(
            sf.col("support") >= sf.greatest(sf.lit(cfg.min_item_users), sf.ceil(cfg.min_item_share * sf.col("size")))
        )
        .filter(sf.col("lift") > 1.0)
        .join(sf.broadcast(data.items.select("item_row", "item_id", "title")), on="item_row")
    )
    top = _top(support, [sf.desc("lift"), sf.desc("support"), sf.asc("item_row")], cfg.n_items).collect()
    pairs.unpersist()
    out: list[list[DistinctiveItem]] = [[] for _ in range(len(sizes))]
    for r in sorted(top, key=lambda r: (r["group"], r["_rank"])):
        out[int(r["group"])].append(
            DistinctiveItem(
                item_id=str(r["item_id"]),
                title=str(r["title"] or r["item_id"]),
                users=int(r["support"]),
                share_in_group=float(r["share"]),
                share_overall=float(r["overall"]),
                lift=float(r["lift"]),
            )
        )
    return out


def _age_band(column: Column, edges: tuple[int, ...]) -> Column:
    from pyspark.sql import functions as sf

    age = column.cast("double")
    band = sf.when(age < edges[0], sf.lit(f"under {edges[0]}"))
    for a, b in itertools.pairwise(edges):
        band = band.when(age < b, sf.lit(f"{a}-{b - 1}"))
    return band.when(age >= edges[-1], sf.lit(f"{edges[-1]}+"))


def attribute_skew_spark(
    data: SparkData, labels: DataFrame, n_groups: int, config: DescribeConfig
) -> list[list[AttributeSkew]]:
    from pyspark.sql import functions as sf

    cfg = config.facts
    users = data.users
    candidates = [c for c in users.columns if c not in ("user_id", "text", "user_row", "age")]
    if cfg.attributes is not None:
        candidates = [c for c in cfg.attributes if c in users.columns and c != "age"]
    elif candidates:
        distinct = users.agg(*[sf.countDistinct(c).alias(c) for c in candidates]).collect()[0]
        candidates = [c for c in candidates if 2 <= int(distinct[c]) <= 50]
    columns = {c: sf.col(f"`{c}`").cast("string") for c in candidates}
    if "age" in users.columns and (cfg.attributes is None or "age" in cfg.attributes):
        columns = {"age band": _age_band(sf.col("age"), cfg.age_bands), **columns}
    if not columns:
        return [[] for _ in range(n_groups)]
    long = (
        users.select(
            "user_row",
            sf.explode(
                sf.array(*[sf.struct(sf.lit(k).alias("attribute"), v.alias("value")) for k, v in columns.items()])
            ).alias("a"),
        )
        .select("user_row", "a.attribute", "a.value")
        .filter(sf.col("value").isNotNull())
    )
    overall = long.groupBy("attribute", "value").count().withColumnRenamed("count", "n")
    known = long.groupBy("attribute").count().withColumnRenamed("count", "n_known")
    in_group = long.join(labels.filter("group >= 0"), on="user_row")
    counts = in_group.groupBy("group", "attribute", "value").count().withColumnRenamed("count", "users")
    group_known = in_group.groupBy("group", "attribute").count().withColumnRenamed("count", "g_known")
    skew = (
        counts.join(group_known, on=["group", "attribute"])
        .join(overall, on=["attribute", "value"])
        .join(known, on="attribute")
        .withColumn("share", sf.col("users") / sf.col("g_known"))
        .withColumn("overall", sf.col("n") / sf.col("n_known"))
        .withColumn("lift", sf.col("share") / sf.col("overall"))
        .filter((sf.col("users") >= cfg.min_attribute_users) & (sf.col("lift") >= cfg.min_attribute_lift))
    )
    top = _top(skew, [sf.desc("lift"), sf.asc("attribute"), sf.asc("value")], cfg.n_attributes).collect()
    out: list[list[AttributeSkew]] = [[] for _ in range(n_groups)]
    for r in sorted(top, key=lambda r: (r["group"], r["_rank"])):
        out[int(r["group"])].append(
            AttributeSkew(
                attribute=str(r["attribute"]),
                value=str(r["value"]),
                users=int(r["users"]),
                share_in_group=float(r["share"]),
                share_overall=float(r["overall"]),
                lift=float(r["lift"]),
            )
        )
    return out


def describe_groups_spark(
    data: SparkData,
    texts: DataFrame,
    assigned: DataFrame,
    sizes: np.ndarray,
    config: DescribeConfig | None = None,
) -> list[Persona]:
    """One card per group. ``assigned``: ``user_row``, ``group``, ``similarity`` (cosine to the centroid)."""
    from pyspark.sql import functions as sf

    config = config or DescribeConfig()
    n_groups = len(sizes)
    labels = assigned.select("user_row", "group")
    keywords = keywords_spark(texts, labels, n_groups, config)
    items = distinctive_items_spark(data, labels, sizes, config)
    skew = attribute_skew_spark(data, labels, n_groups, config)
    reps = _top(assigned, [sf.desc("similarity"), sf.asc("user_row")], config.facts.n_representatives)
    rep_rows = reps.join(texts.select("user_row", "user_id", "text"), on="user_row").collect()
    representatives: list[list[Representative]] = [[] for _ in range(n_groups)]
    for r in sorted(rep_rows, key=lambda r: (r["group"], r["_rank"])):
        g = int(r["group"])
        representatives[g].append(
            Representative(
                user_id=str(r["user_id"]),
                similarity=float(r["similarity"]),
                quote=quote(r["text"], keywords[g], config.facts.quote_words),
            )
        )
    total = max(data.n_users, 1)
    names = distinct_names(keywords, sizes.tolist(), config.keywords.name_terms)
    return [
        Persona(
            group=g,
            name=names[g],
            size=int(sizes[g]),
            share=float(sizes[g] / total),
            keywords=keywords[g],
            representatives=representatives[g],
            distinctive_items=items[g],
            attribute_skew=skew[g],
        )
        for g in range(n_groups)
    ]
