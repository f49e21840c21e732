"""Errors in what the user gave us, and how the command-line tools report them."""

import functools
import sys
from collections.abc import Callable
from typing import Any

#: Exit status of every command when its input is bad (nothing is written then).
INPUT_ERROR_STATUS = 2


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
