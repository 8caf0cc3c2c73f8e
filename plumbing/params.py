"""Numbers and times as people type them into addresses and forms. A value that is
not one is the sender's mistake: callers answer 400 naming the field, never 500."""

from datetime import datetime

from django.utils.dateparse import parse_datetime

# The largest id any of our databases stores (a signed 64-bit integer).
MAX_ID = 2**63 - 1


def whole_number(raw: object, *, minimum: int = 0, maximum: int = MAX_ID) -> int | None:
    """``raw`` as an int if it is a whole number in ASCII digits between ``minimum`` and
    ``maximum``; else None. Not ``str.isdigit()`` alone: it is true of "²" (which
    ``int()`` refuses) and of "١٢" (which ``int()`` reads as 12)."""
    if not isinstance(raw, str) or not raw.isascii() or not raw.isdigit():
        return None
    if len(raw) > len(str(maximum)):  # long strings: int() refuses over 4,300 digits
        return None
    value = int(raw)
    return value if minimum <= value <= maximum else None


def iso_datetime(raw: str) -> datetime | None:
    """An ISO 8601 date and time (naive or with an offset), or None if it is not one,
    or not a real one: month 13, an offset of +24:00 (``parse_datetime`` raises
    ValueError for those)."""
    try:
        return parse_datetime(raw)
    except (ValueError, OverflowError):
        return None


class IdConverter:
    """``<id:…>`` in a path: a row id, digits that fit the id column. A larger number
    is no row of ours, so the address does not match (404) rather than reaching the
    database, where SQLite cannot even bind it."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            raise ValueError(value)
        return number

    def to_url(self, value: int) -> str:
        return str(value)
