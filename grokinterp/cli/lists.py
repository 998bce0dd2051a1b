"""Lists given on the command line (`--seeds 0-3,7`), read the same way by every command."""

from __future__ import annotations

from grokinterp.errors import UsageError


def parse_list(text: str, kind: type) -> list:
    """'0-3,7' -> [0, 1, 2, 3, 7] for ints; '0.3,1' -> [0.3, 1.0] for floats."""
    values = []
    try:
        for part in text.split(","):
            if kind is int and "-" in part.strip()[1:]:
                low, high = part.split("-", 1)
                values.extend(range(int(low), int(high) + 1))
            else:
                values.append(kind(part))
    except ValueError:
        raise UsageError(f"cannot read {text!r} as a list of {kind.__name__}s") from None
    if not values:
        raise UsageError(f"empty list {text!r}")
    return values
