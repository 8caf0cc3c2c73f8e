"""What the server-rendered SVG charts share (customers' latency, the reliability
report): an axis that ends on a round number."""


def nice_ceiling(value: float, *, empty: float = 1.0) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^n that is at least ``value``; ``empty`` for
    a chart with nothing above zero."""
    if value <= 0:
        return empty
    magnitude = 1.0
    while magnitude * 10 < value:
        magnitude *= 10
    while magnitude > value:
        magnitude /= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude
