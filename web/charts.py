"""Weekly charts as inline SVG, so the insights page reads without JavaScript and fetches nothing else.

A chart is an `<svg role="img">` whose `<title>` names it and whose `<desc>` says every value in words,
for screen readers; each point or bar has its own `<title>` (a hover tooltip with no script) and carries
`data-label` / `data-value` so a browser test can read what was plotted. Colours live in CSS classes;
the small default `<style>` uses `:where()` so it weighs nothing against the page's own stylesheet
(an inline SVG's `<style>` applies to the whole HTML document, not just to the chart).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from readmodels.stats import compact

LINE = "line"
BAR = "bar"

FONT_SIZE = 14  # in viewBox units: a 640-wide chart shrunk onto a phone still shows about 8px text
CHAR_WIDTH = 9.0  # a generous average glyph advance at FONT_SIZE, to keep labels apart without measuring text
LABEL_GAP = 10.0
MARGIN_TOP = 12.0
MARGIN_RIGHT = 12.0
MARGIN_BOTTOM = 26.0
POINT_RADIUS = 3.5
ANOMALY_RADIUS = 5.5
BAR_SHARE = 0.7  # of each week's slot; the rest is the gap between bars
MEAN_DASHES = "5 4"

STYLE = (
    f":where(.engage-chart){{font-family:system-ui,sans-serif;font-size:{FONT_SIZE}px}}"
    ":where(.engage-chart text){fill:currentColor}"
    ":where(.engage-chart .axis,.engage-chart .grid){stroke:currentColor;stroke-opacity:.25}"
    ":where(.engage-chart .line){fill:none;stroke:#2563eb;stroke-width:2;stroke-linejoin:round}"
    ":where(.engage-chart .point,.engage-chart .bar){fill:#2563eb}"
    ":where(.engage-chart .anomaly){fill:#dc2626}"
    ":where(.engage-chart .partial){fill-opacity:.35;stroke:#2563eb;stroke-dasharray:3 2}"
    ":where(.engage-chart .mean){stroke:currentColor;stroke-opacity:.6}"
    ":where(.engage-chart .empty){fill:currentColor;opacity:.6}"
)


def line_chart(
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    title: str,
    unit: str = "",
    mean: float | None = None,
    anomalies: Sequence[int] = (),
    width: int = 640,
    height: int = 200,
    empty_text: str = "no data",
    partial: int | None = None,
) -> Markup:
    """A line through the weekly values, broken where a week is None, with a point per present value."""
    return _chart(LINE, labels, values, title, unit, mean, anomalies, width, height, empty_text, partial)


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    title: str,
    unit: str = "",
    mean: float | None = None,
    anomalies: Sequence[int] = (),
    width: int = 640,
    height: int = 200,
    empty_text: str = "no data",
    partial: int | None = None,
) -> Markup:
    """A bar per week with a value (counts, mostly); a None week is an empty slot."""
    return _chart(BAR, labels, values, title, unit, mean, anomalies, width, height, empty_text, partial)


@dataclass(frozen=True)
class _Frame:
    """Where the plot area sits in the viewBox, and how values and week indices map into it."""

    left: float
    right: float
    top: float
    bottom: float
    low: float
    high: float
    count: int

    @property
    def slot(self) -> float:
        return (self.right - self.left) / self.count

    def x(self, index: int) -> float:
        return self.left + (index + 0.5) * self.slot

    def y(self, value: float) -> float:
        return self.bottom - (value - self.low) / (self.high - self.low) * (self.bottom - self.top)


def _chart(
    kind: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    title: str,
    unit: str,
    mean: float | None,
    anomalies: Sequence[int],
    width: int,
    height: int,
    empty_text: str,
    partial: int | None = None,
) -> Markup:
    """`partial`: the index of a week still running, drawn faint and described as so far."""
    _check(labels, values, mean, anomalies)
    if partial is not None and not 0 <= partial < len(values):
        raise ValueError(f"partial week {partial} falls outside {len(values)} values")
    chart_id = _chart_id(kind, labels, values, title, unit, mean, anomalies)
    present = [value for value in values if value is not None]
    description = _description(labels, values, unit, mean, anomalies, empty_text, partial)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="engage-chart engage-chart-{kind}" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMidYMid meet" role="img" '
        f'aria-labelledby="{chart_id}-title" aria-describedby="{chart_id}-desc">',
        f"<style>{STYLE}</style>",
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
    ]
    if not present:
        parts.append(
            f'<text class="empty" x="{_coord(width / 2)}" y="{_coord(height / 2)}" text-anchor="middle" '
            f'dominant-baseline="middle">{escape(empty_text)}</text>'
        )
    else:
        low = min(0.0, *present, *([mean] if mean is not None else []))
        high = max(0.0, *present, *([mean] if mean is not None else []))
        ticks = sorted({low, 0.0, high})
        tick_texts = [_with_unit(compact(tick), unit) for tick in ticks]
        frame = _Frame(
            left=max(max(len(text) for text in tick_texts) * CHAR_WIDTH + LABEL_GAP, 24.0),
            right=width - MARGIN_RIGHT,
            top=MARGIN_TOP,
            bottom=height - MARGIN_BOTTOM,
            low=low,
            high=high if high > low else low + 1,  # all zeros: any scale will do, the line sits on the axis
            count=len(values),
        )
        if frame.right - frame.left < 1 or frame.bottom - frame.top < 1:
            raise ValueError(f"a {width}x{height} chart leaves no room to plot in")
        parts += _axes(frame, ticks, tick_texts)
        parts += _x_labels(frame, labels, width)
        if mean is not None:
            parts.append(
                f'<line class="mean" x1="{_coord(frame.left)}" x2="{_coord(frame.right)}" '
                f'y1="{_coord(frame.y(mean))}" y2="{_coord(frame.y(mean))}" stroke-dasharray="{MEAN_DASHES}">'
                f"<title>{escape(_with_unit('mean ' + compact(mean), unit))}</title></line>"
            )
        marks = _lines_and_points if kind == LINE else _bars
        parts += marks(frame, labels, values, set(anomalies), unit, partial)
    parts.append("</svg>")
    return Markup("".join(parts))


def _check(labels: Sequence[str], values: Sequence[float | None], mean: float | None, anomalies: Sequence[int]) -> None:
    if len(labels) != len(values):
        raise ValueError(f"{len(labels)} labels for {len(values)} values")
    if any(value is not None and not math.isfinite(value) for value in [*values, mean]):
        raise ValueError("chart values must be finite numbers or None")
    if any(not 0 <= index < len(values) for index in anomalies):
        raise ValueError(f"anomaly indices {list(anomalies)} fall outside {len(values)} values")


def _chart_id(
    kind: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    title: str,
    unit: str,
    mean: float | None,
    anomalies: Sequence[int],
) -> str:
    """An id from the chart's content: stable across renders, and distinct for each chart on one page."""
    content = repr((kind, list(labels), list(values), title, unit, mean, list(anomalies)))
    return "chart-" + hashlib.blake2b(content.encode(), digest_size=5).hexdigest()


def _description(
    labels: Sequence[str],
    values: Sequence[float | None],
    unit: str,
    mean: float | None,
    anomalies: Sequence[int],
    empty_text: str,
    partial: int | None = None,
) -> str:
    """Every value in words, for whoever cannot see the picture (a week still running says so)."""
    if all(value is None for value in values):
        return empty_text
    text = "; ".join(
        f"{label}: {empty_text if value is None else _with_unit(compact(value), unit)}"
        + (" so far" if index == partial else "")
        for index, (label, value) in enumerate(zip(labels, values, strict=True))
    )
    if mean is not None:
        text += f". Mean: {_with_unit(compact(mean), unit)}"
    marked = sorted({index for index in anomalies if values[index] is not None})
    if marked:
        text += ". Anomalies: " + ", ".join(labels[index] for index in marked)
    return text + "."


def _axes(frame: _Frame, ticks: Sequence[float], tick_texts: Sequence[str]) -> list[str]:
    parts = []
    for tick, text in zip(ticks, tick_texts, strict=True):
        y = _coord(frame.y(tick))
        parts.append(
            f'<line class="{"axis" if tick == 0 else "grid"}" x1="{_coord(frame.left)}" x2="{_coord(frame.right)}" '
            f'y1="{y}" y2="{y}"/>'
            f'<text class="tick" x="{_coord(frame.left - 6)}" y="{y}" text-anchor="end" '
            f'dominant-baseline="middle">{escape(text)}</text>'
        )
    return parts


def _x_labels(frame: _Frame, labels: Sequence[str], width: int) -> list[str]:
    """The first and last labels always, and evenly spaced ones between while they do not overlap."""
    widest = max(len(label) for label in labels) * CHAR_WIDTH
    step = max(1, math.ceil((widest + LABEL_GAP) / frame.slot))
    shown = list(range(0, len(labels), step))
    last = len(labels) - 1
    if shown[-1] != last:
        if len(shown) > 1 and last - shown[-1] < step:
            shown.pop()  # too close to the last label to share the axis with it
        shown.append(last)
    placed: list[tuple[int, float]] = []
    for index in shown:
        half = len(labels[index]) * CHAR_WIDTH / 2
        x = min(max(frame.x(index), half + 2), width - half - 2)  # keep the end labels inside the picture
        placed.append((index, x))
    # Keeping the last label inside the picture can pull it onto the one before: drop that one.
    if len(placed) > 2 and placed[-1][1] - placed[-2][1] < widest + LABEL_GAP:
        placed.pop(-2)
    parts = []
    for index, x in placed:
        parts.append(
            f'<text class="x-label" x="{_coord(x)}" y="{_coord(frame.bottom + FONT_SIZE + 6)}" '
            f'text-anchor="middle">{escape(labels[index])}</text>'
        )
    return parts


def _lines_and_points(
    frame: _Frame,
    labels: Sequence[str],
    values: Sequence[float | None],
    anomalies: set[int],
    unit: str,
    partial: int | None,
) -> list[str]:
    """One polyline per run of present weeks (a lone week is just its point), then the points on top."""
    runs: list[list[tuple[int, float]]] = [[]]
    for index, value in enumerate(values):
        if value is None:
            runs.append([])
        else:
            runs[-1].append((index, value))
    parts = [
        '<polyline class="line" points="'
        + " ".join(f"{_coord(frame.x(index))},{_coord(frame.y(value))}" for index, value in run)
        + '"/>'
        for run in runs
        if len(run) >= 2
    ]
    for index, value in enumerate(values):
        if value is None:
            continue
        anomalous = index in anomalies
        parts.append(
            f'<circle class="point{" anomaly" if anomalous else ""}{" partial" if index == partial else ""}" '
            f'cx="{_coord(frame.x(index))}" '
            f'cy="{_coord(frame.y(value))}" r="{ANOMALY_RADIUS if anomalous else POINT_RADIUS}" '
            f"{_data(labels[index], value, unit)}</circle>"
        )
    return parts


def _bars(
    frame: _Frame,
    labels: Sequence[str],
    values: Sequence[float | None],
    anomalies: set[int],
    unit: str,
    partial: int | None,
) -> list[str]:
    """A bar from the zero line to each present value; negative values hang below it."""
    bar_width = max(frame.slot * BAR_SHARE, 1.0)
    parts = []
    for index, value in enumerate(values):
        if value is None:
            continue
        top = min(frame.y(value), frame.y(0.0))
        parts.append(
            f'<rect class="bar{" anomaly" if index in anomalies else ""}{" partial" if index == partial else ""}" '
            f'x="{_coord(frame.x(index) - bar_width / 2)}" y="{_coord(top)}" width="{_coord(bar_width)}" '
            f'height="{_coord(abs(frame.y(value) - frame.y(0.0)))}" '
            f"{_data(labels[index], value, unit)}</rect>"
        )
    return parts


def _data(label: str, value: float, unit: str) -> str:
    """The data attributes closing a mark's start tag, and its tooltip; `data-value` is the exact input."""
    exact = str(int(value)) if float(value).is_integer() else repr(float(value))
    tooltip = f"{label}: {_with_unit(compact(value), unit)}"
    return f'data-label="{escape(label)}" data-value="{exact}"><title>{escape(tooltip)}</title>'


def _with_unit(number: str, unit: str) -> str:
    if not unit:
        return number
    return f"{number}{unit}" if unit == "%" else f"{number} {unit}"


def _coord(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")
