"""MicroBatcher: concurrent inputs share one batch call, each caller gets its own output or its own error; and
POST /users through it answers as one request at a time would (real encoder, real app)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from threadpoolctl import threadpool_info

from personas.api import PersonaService, ServeSettings, create_app
from personas.api.batching import BatcherClosedError, MicroBatcher
from personas.api.testing import write_example_run
from personas.encode import OnnxEncoder, encode_queries, encode_query


class Squares:
    """A batch function that records its batches; slow enough that callers queue behind a running batch."""

    def __init__(self, delay: float = 0.02) -> None:
        self.delay = delay
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        if any(i < 0 for i in items):
            raise ValueError(f"negative input in {items}")
        return [i * i for i in items]


def test_concurrent_inputs_are_batched_and_each_caller_gets_its_own_output() -> None:
    fn = Squares()
    batcher = MicroBatcher(fn, max_batch=8)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(batcher.submit, range(40)))
    batcher.close()
    assert results == [i * i for i in range(40)]
    assert sorted(i for batch in fn.batches for i in batch) == list(range(40))  # each input run exactly once
    assert max(len(b) for b in fn.batches) == 8  # capped at max_batch
    assert len(fn.batches) < 40 / 2  # batches formed while the previous one ran
    assert batcher.inputs == 40 and batcher.batches == len(fn.batches)
    assert fn.threads == {"personas-micro-batcher"}


def test_an_error_reaches_only_the_request_whose_input_caused_it() -> None:
    fn = Squares()
    batcher = MicroBatcher(fn, max_batch=16, max_wait_s=0.2)  # a long wait: all 6 land in one batch
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(batcher.submit, i) for i in (1, 2, -3, 4, 5, 6)]
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result())
            except ValueError as exc:
                outcomes.append(str(exc))
    batcher.close()
    assert outcomes == [1, 4, "negative input in [-3]", 16, 25, 36]
    assert sorted(fn.batches[0]) == [-3, 1, 2, 4, 5, 6]  # tried together first, then each alone


def test_a_lone_request_is_not_held_back_and_a_full_batch_does_not_wait() -> None:
    fn = Squares(delay=0.0)
    immediate = MicroBatcher(fn, max_batch=8)  # default: no wait
    immediate.submit(0)  # starts the worker thread
    start = time.perf_counter()
    assert immediate.submit(3) == 9
    assert time.perf_counter() - start < 0.05
    immediate.close()

    waiting = MicroBatcher(fn, max_batch=4, max_wait_s=0.3)
    start = time.perf_counter()
    assert waiting.submit(2) == 4
    alone = time.perf_counter() - start
    assert 0.25 <= alone < 1.0  # a lone input waits its max_wait_s for company, no longer
    start = time.perf_counter()
    futures = [waiting.enqueue(i) for i in range(4)]
    assert [f.result() for f in futures] == [0, 1, 4, 9]
    assert time.perf_counter() - start < 0.2  # max_batch reached: flushed at once
    waiting.close()


def test_async_callers_are_batched_without_blocking_the_event_loop() -> None:
    fn = Squares()
    batcher = MicroBatcher(fn, max_batch=32)

    async def main() -> tuple[list[int], int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        task = asyncio.create_task(ticker())
        results = await asyncio.gather(*(batcher.submit_async(i) for i in range(20)))
        task.cancel()
        return list(results), ticks

    results, ticks = asyncio.run(main())
    batcher.close()
    assert results == [i * i for i in range(20)]
    assert len(fn.batches) <= 2  # the first input alone (its batch starts at once), then the 19 queued behind it
    assert ticks >= 5  # the loop kept running while the batches did


def test_close_answers_what_is_queued_then_refuses_and_stops_the_thread() -> None:
    fn = Squares(delay=0.05)
    batcher = MicroBatcher(fn, max_batch=2)
    futures = [batcher.enqueue(i) for i in range(5)]
    batcher.close()
    assert [f.result(timeout=5) for f in futures] == [0, 1, 4, 9, 16]
    assert not any(t.name == "personas-micro-batcher" and t.is_alive() for t in threading.enumerate())
    with pytest.raises(BatcherClosedError, match="closed"):
        batcher.submit(1)
    batcher.close()  # idempotent


def test_max_batch_one_runs_in_the_callers_thread() -> None:
    fn = Squares(delay=0.0)
    batcher = MicroBatcher(fn, max_batch=1)
    assert batcher.submit(7) == 49
    assert fn.threads == {threading.current_thread().name}
    with pytest.raises(ValueError, match=r"'max_batch' parameter of MicroBatcher must be an int >= 1\. Got 0"):
        MicroBatcher(fn, max_batch=0)


def test_real_minilm_vectors_through_the_batcher_equal_one_at_a_time(onnx_int8: OnnxEncoder) -> None:
    texts = [
        "space operas",
        "romantic comedies, but no horror",
        " ".join(["westerns, war films and slow dramas about families on farms"] * 15),
        "anything but horror",
        "cooking shows",
        "",
    ] * 3

    def encode(batch: Sequence[str]) -> list[np.ndarray]:
        return list(encode_queries(onnx_int8, batch))

    batcher = MicroBatcher(encode, max_batch=8, max_wait_s=0.05)
    with ThreadPoolExecutor(len(texts)) as pool:
        vectors = list(pool.map(batcher.submit, texts))
    batcher.close()
    assert batcher.batches < len(texts)  # batched...
    for text, vector in zip(texts, vectors, strict=True):  # ...and each as if alone
        np.testing.assert_array_equal(vector, encode_query(onnx_int8, text))


@pytest.fixture(scope="module")
def minilm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example run with MiniLM text vectors: the service encodes new users' text with the run's encoder."""
    return write_example_run(tmp_path_factory.mktemp("minilm") / "run", encoder="minilm")


def test_post_users_answers_the_same_batched_or_not(settings: ServeSettings, minilm_run: Path) -> None:
    texts = ["space rockets and alien planets", "love letters and weddings", "detectives and heists"] * 4
    answers = {}
    for max_batch in (1, 16):
        database = str(settings.database_url).replace(".sqlite", f"-{max_batch}.sqlite")
        changed = {
            "model_dir": minilm_run,
            "database_url": database,
            "auth": False,
            "encode_batch_max": max_batch,
            "encode_batch_wait_ms": 20,
        }
        app = create_app(settings.model_copy(update=changed))
        service: PersonaService = app.state.service
        with TestClient(app, base_url="http://localhost") as client, ThreadPoolExecutor(len(texts)) as pool:
            responses = list(pool.map(lambda t: client.post("/users", json={"text": t, "n": 5}), texts))
        assert [r.status_code for r in responses] == [201] * len(texts), responses[0].text
        answers[max_batch] = [
            (r.json()["persona"]["group"], [i["item_id"] for i in r.json()["recommendations"]["items"]])
            for r in responses
        ]
        assert service.encode_batcher.inputs == len(texts)  # every text went through the batcher...
        if max_batch > 1:
            assert service.encode_batcher.batches < len(texts)  # ...and concurrent requests shared batch calls
    assert answers[16] == answers[1]


def test_the_served_app_runs_blas_on_one_thread_while_it_serves(settings: ServeSettings) -> None:
    def blas_threads() -> set[int]:  # numpy's and scipy's OpenBLAS: the per-request matrix products
        return {lib["num_threads"] for lib in threadpool_info() if "scipy_openblas" in lib["prefix"]}

    before = blas_threads()
    with TestClient(create_app(settings.model_copy(update={"auth": False})), base_url="http://localhost") as client:
        assert blas_threads() == {1}
        assert client.post("/users", json={"text": "space rockets", "n": 3}).status_code == 201
    assert blas_threads() == before  # given back at shutdown
