"""The pure parts: medians, spreads, and the chart's markup."""

from fractions import Fraction

from reliability.charts import bar_chart
from reliability.report import Spread, median, month_index, month_start


def test_the_median_of_an_even_count_is_the_mean_of_the_middle_two():
    assert median([]) is None
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5
    assert median([Fraction(1, 3), Fraction(2, 3)]) == Fraction(1, 2)


def test_a_figure_not_measured_is_counted_apart_never_as_zero():
    spread = Spread.of([120, None, 60, None])

    assert (spread.measured, spread.missing) == (2, 2)
    assert spread.median == 90
    assert spread.worst == 120
    assert spread.total == 180


def test_months_are_utc_calendar_months():
    index = month_index(month_start(2026 * 12 + 11))
    assert index == 2026 * 12 + 11
    assert f"{month_start(index + 1):%Y-%m-%d}" == "2027-01-01"


def test_a_month_without_a_value_has_no_bar_and_says_so():
    svg = bar_chart(
        [("Jan", 10.0, "10 min"), ("Feb", None, "not measured <yet>")],
        slug="c",
        title="Median <time>",
        description="Jan: 10 min; Feb: not measured",
    )

    assert svg.count('<rect class="value"') == 1
    assert '<rect class="none"' in svg
    assert "<title>Feb: not measured &lt;yet&gt;</title>" in svg
    assert '<title id="c-title">Median &lt;time&gt;</title>' in svg
    assert 'role="img"' in svg
