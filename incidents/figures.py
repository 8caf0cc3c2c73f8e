"""How every figure is shown: one rule for durations and one for percentages, used by
every page, feed, CSV and API. Pure functions, no Django.

Durations
    Whole seconds as hours, minutes and seconds with the zero parts dropped:
    ``"1 h 5 min"``, ``"1 min 5 s"``, ``"45 s"``, ``"0 s"``. Hours are the largest
    unit, so a long outage reads ``"26 h 3 min"``.

Percentages
    Floored, never rounded: two decimals on pages, four in APIs. A loss however
    small never shows as ``"100.00%"`` and a figure is never shown above its true
    value. A positive share below the last decimal shows as ``"<0.01%"`` (true, and
    not "0.00%", which would say nobody was touched). Exact values (``Fraction``)
    are floored exactly; floats are floored as the binary value they hold.

Thresholds
    Anything compared against a threshold (an SLA target, a bar's colour) is compared
    on the unrounded value, never on these texts.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction
from math import floor


def duration_text(seconds: float) -> str:
    """``3905`` → ``"1 h 5 min 5 s"``; a fraction of a second is dropped."""
    whole = max(0, floor(seconds))
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{n} {unit}" for n, unit in ((hours, "h"), (minutes, "min"), (secs, "s")) if n]
    return " ".join(parts) or "0 s"


def floor_to(value: float | Fraction, places: int) -> Decimal:
    """``value`` floored to ``places`` decimals, exactly (no float rounding on the way)."""
    exact = Fraction(value)
    scale = 10**places
    return Decimal(floor(exact * scale)) / Decimal(scale)


def floor_pct(value: float | Fraction | None, places: int = 4) -> float | None:
    """A percentage for an API: floored to ``places`` decimals, as a JSON number."""
    if value is None:
        return None
    return float(floor_to(value, places))


def percent_text(value: float | Fraction | None, *, empty: str = "No data") -> str:
    """``99.9968`` → ``"99.99%"``; ``None`` (no data) → ``empty``."""
    if value is None:
        return empty
    if value == 100:
        return "100.00%"  # most days of most bars: no loss, no arithmetic
    if 0 < value < Fraction(1, 100):
        return "<0.01%"
    shown = floor_to(value, 2).quantize(Decimal("0.01"), rounding=ROUND_FLOOR)
    return f"{shown}%"
