"""Errors in what the user gave us, and how the command-line tools report them."""

import functools
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

#: Exit status of every command when its input is bad (nothing is written then).
INPUT_ERROR_STATUS = 2
#: Offending rows, runs or values listed in a message before "and N more".
SHOWN = 5


class InputError(ValueError):
    """Bad input: the message names the file, row, column or key, and says what to do."""


def exits_on_input_error(main: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a command's main function: an :class:`InputError` prints its message and exits 2."""

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return main(*args, **kwargs)
        except InputError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(INPUT_ERROR_STATUS)

    return wrapper


def plain(value: Any) -> str:
    """A value as a user writes it in a message: numbers without numpy's ``np.int64(...)``,
    ``null`` for None, ``true``/``false``, text unquoted, lists in brackets and mappings in
    braces (Hydra's override syntax)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Mapping) or hasattr(value, "items"):
        return "{" + ", ".join(f"{plain(k)}: {plain(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        return "[" + ", ".join(plain(item) for item in value) + "]"
    return str(value)


def listing(items: Iterable[Any], separator: str = ", ") -> str:
    """``a, b, c`` (each item :func:`plain`) with at most :data:`SHOWN` items, then
    ``and N more``."""
    items = [plain(item) for item in items]
    shown = separator.join(items[:SHOWN])
    more = len(items) - SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


def rows(positions: Sequence[int] | np.ndarray) -> str:
    """``row 3`` or ``rows 3, 7, 9``: 1-based data-row numbers of 0-based positions."""
    numbers = [int(position) + 1 for position in positions]
    return ("row " if len(numbers) == 1 else "rows ") + listing(numbers)
