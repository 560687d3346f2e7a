"""Read a weekly series the way the insights page shows it: its mean, its spread, its trend, its odd weeks.

Pure functions over plain numbers, so the page, the jobs and the tests agree on one reading (CHAOSS-style
metrics are only useful when everyone computes them the same way). A None is a week with no data, such as
a median over no pull requests: it is left out of every statistic but keeps its place, so week indices and
the trend's time axis stay true.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

RISING = "rising"
FALLING = "falling"
STEADY = "steady"

# A trend smaller than 1% of the mean per week reads as noise; the floor keeps a zero-mean series from
# calling the tiniest float error a trend.
RELATIVE_TOLERANCE = 0.01
ABSOLUTE_TOLERANCE = 1e-9
# With the population standard deviation, n values can lie at most sqrt(n - 1) deviations from their mean,
# so a series needs 6 present values before any week can be flagged.
ANOMALY_DEVIATIONS = 2.0


@dataclass(frozen=True)
class Summary:
    mean: float | None
    stddev: float | None
    slope: float | None
    direction: str
    anomalies: tuple[int, ...]


def summarise(values: Sequence[float | None]) -> Summary:
    """Mean, population standard deviation, least-squares slope per week, direction and anomalous indices."""
    weeks = [index for index, value in enumerate(values) if value is not None]
    present = [float(value) for value in values if value is not None]
    if not present:
        return Summary(mean=None, stddev=None, slope=None, direction=STEADY, anomalies=())
    mean = statistics.fmean(present)
    stddev = statistics.pstdev(present, mu=mean)
    slope = statistics.linear_regression(weeks, present).slope if len(present) >= 2 else None
    return Summary(
        mean=mean,
        stddev=stddev,
        slope=slope,
        direction=direction_of(slope, mean),
        anomalies=tuple(
            week for week, value in zip(weeks, present, strict=True) if abs(value - mean) > ANOMALY_DEVIATIONS * stddev
        )
        if stddev > 0
        else (),
    )


def direction_of(slope: float | None, mean: float) -> str:
    """Rising, falling or steady; a slope within 1% of the mean per week (or 1e-9) is steady."""
    if slope is None:
        return STEADY
    tolerance = max(RELATIVE_TOLERANCE * abs(mean), ABSOLUTE_TOLERANCE)
    if slope > tolerance:
        return RISING
    if slope < -tolerance:
        return FALLING
    return STEADY


def median(values: Sequence[float]) -> float | None:
    """The middle value (mean of the two middle ones for an even count); None when there are none."""
    if not values:
        return None
    return float(statistics.median(values))


def iso_week_start(d: date | datetime) -> date:
    """The Monday of the ISO week holding `d`, in UTC; a naive datetime is taken as UTC already."""
    if isinstance(d, datetime):
        d = (d.astimezone(UTC) if d.tzinfo is not None else d).date()
    return d - timedelta(days=d.weekday())


def weeks_ending(today: date, count: int) -> list[date]:
    """The Mondays of the `count` ISO weeks ending with the week of `today`, oldest first."""
    last = iso_week_start(today)
    return [last - timedelta(weeks=back) for back in range(count - 1, -1, -1)]


def compact(value: float) -> str:
    """A number for reading, as every page, chart and digest writes it: whole numbers without decimals,
    others to at most two places (and -0 as 0)."""
    rounded = round(float(value), 2)
    if rounded.is_integer():
        return str(int(rounded))
    return f"{rounded:.2f}".rstrip("0")
