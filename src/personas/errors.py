"""The exceptions personas raises.

Every message says what is wrong, where (file, line, column, id) and how to fix it.
Each class also inherits the built-in it resembles, so ``except ValueError`` keeps working::

    PersonasError
    ├── DataError(ValueError)            bad input data: files, columns, values, ids
    │   └── DatasetFetchError            a built-in dataset could not be fetched or verified
    ├── ConfigError(ValueError)          a bad parameter or configuration value
    ├── NotFittedError(AttributeError)   a component was used before ``fit``
    └── UnknownIdError(KeyError)         an id that the vocabulary does not know
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataError",
    "DatasetFetchError",
    "NotFittedError",
    "PersonasError",
    "UnknownIdError",
]


class PersonasError(Exception):
    """Base class of every error raised on purpose by personas."""


class DataError(PersonasError, ValueError):
    """Input data is malformed: a missing column, a bad value, a duplicate or unknown id."""


class DatasetFetchError(DataError):
    """A built-in dataset could not be downloaded, extracted or verified."""


class ConfigError(PersonasError, ValueError):
    """A parameter or configuration value is not allowed."""


class NotFittedError(PersonasError, AttributeError):
    """A component was asked to predict before it was fitted."""


class UnknownIdError(PersonasError, KeyError):
    """An external id is not in the vocabulary."""

    def __str__(self) -> str:
        # KeyError quotes its message with repr(); keep it readable.
        return str(self.args[0]) if self.args else ""
