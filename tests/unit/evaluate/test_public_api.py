"""The curated ``personas.evaluate`` namespace: every name resolves, and nothing private leaks into it."""

from __future__ import annotations

import personas.evaluate as evaluate


def test_all_names_resolve_and_are_public() -> None:
    for name in evaluate.__all__:
        assert not name.startswith("_")
        assert getattr(evaluate, name) is not None
