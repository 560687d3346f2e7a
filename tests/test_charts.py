"""Inline SVG charts: well-formed, accessible, escaped, and plotting exactly the numbers they were given."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
from markupsafe import Markup

from web.charts import bar_chart, line_chart

SVG = "{http://www.w3.org/2000/svg}"
WEEKS = ["2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23", "2026-11-30"]
HOSTILE = '<script>alert(1)</script> & "x"'

Chart = Callable[..., Markup]
BOTH = pytest.mark.parametrize("chart", [line_chart, bar_chart], ids=["line", "bar"])


def parse(markup: Markup) -> ET.Element:
    return ET.fromstring(str(markup))  # raises on anything that is not well-formed XML


def marks(root: ET.Element) -> list[ET.Element]:
    """The plotted points or bars: every element carrying a data-value."""
    return [element for element in root.iter() if "data-value" in element.attrib]


def classes(element: ET.Element) -> list[str]:
    return element.get("class", "").split()


def texts(root: ET.Element) -> list[str]:
    return [element.text or "" for element in root.iter(f"{SVG}text")]


def by_id(root: ET.Element, element_id: str) -> ET.Element:
    found = [element for element in root.iter() if element.get("id") == element_id]
    assert len(found) == 1, element_id
    return found[0]


@BOTH
def test_the_chart_is_a_scalable_image_named_by_its_title_and_described_in_words(chart: Chart) -> None:
    root = parse(chart(WEEKS, [1, 2, None, 4, 10.5], title="Time to first review", unit="h"))
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("viewBox") == "0 0 640 200"
    assert root.get("width") == "100%"
    title = by_id(root, root.get("aria-labelledby", ""))
    assert (title.tag, title.text) == (f"{SVG}title", "Time to first review")
    desc = by_id(root, root.get("aria-describedby", ""))
    assert desc.tag == f"{SVG}desc"
    assert desc.text == "2026-11-02: 1 h; 2026-11-09: 2 h; 2026-11-16: no data; 2026-11-23: 4 h; 2026-11-30: 10.5 h."


@BOTH
def test_one_mark_per_present_value_carrying_the_exact_input(chart: Chart) -> None:
    values = [3, None, 0, 2.5, 1 / 3]
    root = parse(chart(WEEKS, values, title="t"))
    plotted = marks(root)
    assert len(plotted) == 4
    assert [element.get("data-label") for element in plotted] == [
        "2026-11-02",
        "2026-11-16",
        "2026-11-23",
        "2026-11-30",
    ]
    assert [float(element.get("data-value", "nan")) for element in plotted] == [3, 0, 2.5, 1 / 3]
    assert all(element.tag == (f"{SVG}circle" if chart is line_chart else f"{SVG}rect") for element in plotted)


@BOTH
def test_each_mark_has_its_own_tooltip_with_label_and_compact_value(chart: Chart) -> None:
    # compact numbers: whole ones without decimals, others to two places at most
    root = parse(chart(WEEKS[:4], [2.0, 2.5, 1 / 3, 1234], title="t", unit="%"))
    tooltips = [element.findtext(f"{SVG}title") for element in marks(root)]
    assert tooltips == ["2026-11-02: 2%", "2026-11-09: 2.5%", "2026-11-16: 0.33%", "2026-11-23: 1234%"]


@BOTH
def test_anomalies_are_marked_with_their_own_class(chart: Chart) -> None:
    root = parse(chart(WEEKS, [10, 10, 10, 10, 40], title="t", anomalies=(4,)))
    assert ["anomaly" in classes(element) for element in marks(root)] == [False, False, False, False, True]
    assert (by_id(root, root.get("aria-describedby", "")).text or "").endswith("Anomalies: 2026-11-30.")


@BOTH
def test_the_week_still_running_is_drawn_faint_and_described_as_so_far(chart: Chart) -> None:
    root = parse(chart(WEEKS, [10, 12, 11, 13, 4], title="t", partial=4))
    assert ["partial" in classes(element) for element in marks(root)] == [False, False, False, False, True]
    assert "2026-11-30: 4 so far" in (by_id(root, root.get("aria-describedby", "")).text or "")
    with pytest.raises(ValueError, match="partial week 5"):
        chart(WEEKS, [1, 2, 3, 4, 5], title="t", partial=5)


def test_a_missing_week_breaks_the_line() -> None:
    root = parse(line_chart(WEEKS, [1, 2, None, 3, 4], title="t"))
    lines = root.findall(f"{SVG}polyline")
    assert len(lines) == 2
    points = [(element.get("cx"), element.get("cy")) for element in marks(root)]
    runs = [[tuple(pair.split(",")) for pair in (line.get("points") or "").split()] for line in lines]
    assert runs == [points[:2], points[2:]]  # each line passes through its own points and no others


def test_an_unbroken_series_is_one_line() -> None:
    root = parse(line_chart(WEEKS[:3], [1, 2, 3], title="t"))
    lines = root.findall(f"{SVG}polyline")
    assert len(lines) == 1
    assert len((lines[0].get("points") or "").split()) == 3


def test_a_week_alone_between_gaps_is_a_point_without_a_line() -> None:
    root = parse(line_chart(WEEKS[:3], [1, None, 3], title="t"))
    assert root.findall(f"{SVG}polyline") == []
    assert len(marks(root)) == 2


def test_higher_values_are_drawn_higher() -> None:
    root = parse(line_chart(WEEKS[:3], [1, 3, 2], title="t"))
    y = [float(element.get("cy", "nan")) for element in marks(root)]
    assert y[1] < y[2] < y[0]  # SVG's y grows downwards


def test_bars_stand_on_the_zero_line_and_the_tallest_reaches_the_top() -> None:
    root = parse(bar_chart(WEEKS[:3], [0, 5, 10], title="t"))
    bars = marks(root)
    bottoms = {round(float(bar.get("y", "nan")) + float(bar.get("height", "nan")), 1) for bar in bars}
    assert len(bottoms) == 1  # a common baseline
    heights = [float(bar.get("height", "nan")) for bar in bars]
    assert heights[0] == 0
    assert heights[2] == pytest.approx(2 * heights[1], abs=0.2)  # ten is twice five, to coordinate rounding


@BOTH
def test_the_y_axis_is_labelled_with_zero_and_the_maximum(chart: Chart) -> None:
    root = parse(chart(WEEKS, [1, 2, None, 4, 10.5], title="t", unit="h"))
    ticks = [element.text for element in root.iter(f"{SVG}text") if "tick" in classes(element)]
    assert ticks == ["0 h", "10.5 h"]


@BOTH
def test_the_mean_is_a_dashed_line(chart: Chart) -> None:
    root = parse(chart(WEEKS, [1, 2, 3, 4, 5], title="t", mean=3.0))
    means = [element for element in root.iter(f"{SVG}line") if "mean" in classes(element)]
    assert len(means) == 1
    assert means[0].get("stroke-dasharray")
    assert means[0].get("y1") == means[0].get("y2")
    assert (by_id(root, root.get("aria-describedby", "")).text or "").endswith("Mean: 3.")


@BOTH
def test_no_mean_no_mean_line(chart: Chart) -> None:
    root = parse(chart(WEEKS, [1, 2, 3, 4, 5], title="t"))
    assert not [element for element in root.iter() if "mean" in classes(element)]


def test_the_first_and_last_weeks_are_always_labelled_and_a_long_series_is_thinned() -> None:
    labels = [f"week {number:02d}" for number in range(52)]
    root = parse(line_chart(labels, list(range(52)), title="t"))
    shown = [element.text for element in root.iter(f"{SVG}text") if "x-label" in classes(element)]
    assert shown[0] == "week 00"
    assert shown[-1] == "week 51"
    assert 2 < len(shown) < 52


def test_a_short_series_labels_every_week() -> None:
    root = parse(bar_chart(WEEKS, [1, 2, 3, 4, 5], title="t"))
    assert [element.text for element in root.iter(f"{SVG}text") if "x-label" in classes(element)] == WEEKS


@BOTH
def test_outside_text_is_escaped(chart: Chart) -> None:
    markup = chart([HOSTILE, "b"], [1, 2], title=HOSTILE, unit="<b>u</b>", anomalies=(0,), mean=1.5)
    assert "<script" not in markup
    assert "<b>" not in markup
    root = parse(markup)
    assert by_id(root, root.get("aria-labelledby", "")).text == HOSTILE
    assert marks(root)[0].get("data-label") == HOSTILE
    assert marks(root)[0].findtext(f"{SVG}title") == f"{HOSTILE}: 1 <b>u</b>"


@BOTH
@pytest.mark.parametrize("values", [[], [None, None]], ids=["no weeks", "only missing weeks"])
def test_nothing_to_plot_says_no_data(chart: Chart, values: list[float | None]) -> None:
    root = parse(chart(WEEKS[: len(values)], values, title="Median review time"))
    assert texts(root) == ["no data"]
    assert marks(root) == []
    assert by_id(root, root.get("aria-labelledby", "")).text == "Median review time"
    assert by_id(root, root.get("aria-describedby", "")).text == "no data"


def test_the_caller_words_the_empty_chart() -> None:
    root = parse(line_chart([], [], title="评审时间", empty_text="暂无数据"))
    assert texts(root) == ["暂无数据"]


@BOTH
def test_all_zero_weeks_sit_on_the_axis(chart: Chart) -> None:
    root = parse(chart(WEEKS[:3], [0, 0, 0], title="t"))
    assert [element.get("data-value") for element in marks(root)] == ["0", "0", "0"]
    assert [element.text for element in root.iter(f"{SVG}text") if "tick" in classes(element)] == ["0"]


def test_a_single_week_is_plotted() -> None:
    root = parse(line_chart(["2026-11-30"], [7], title="t"))
    assert [element.get("data-value") for element in marks(root)] == ["7"]
    assert root.findall(f"{SVG}polyline") == []


@BOTH
def test_the_chart_stands_alone(chart: Chart) -> None:
    markup = chart(WEEKS, [1, 2, 3, 4, 5], title="t", mean=3.0, anomalies=(4,))
    root = parse(markup)
    assert root.find(f"{SVG}style") is not None  # looks right without the page's stylesheet
    assert "href" not in markup and "url(" not in markup  # and fetches nothing
    assert not [element for element in root.iter() if "style" in element.attrib or "fill" in element.attrib]


def test_two_charts_on_one_page_do_not_share_ids() -> None:
    first = parse(line_chart(WEEKS, [1, 2, 3, 4, 5], title="Reviews"))
    second = parse(line_chart(WEEKS, [1, 2, 3, 4, 5], title="Comments"))
    assert first.get("aria-labelledby") != second.get("aria-labelledby")


def test_the_result_is_markup_so_templates_do_not_escape_it_again() -> None:
    assert isinstance(line_chart(WEEKS, [1, 2, 3, 4, 5], title="t"), Markup)


@BOTH
@pytest.mark.parametrize(
    "case, labels, values, anomalies",
    [
        ("fewer labels than values", WEEKS[:2], [1, 2, 3], ()),
        ("a value that is not a number", WEEKS[:2], [1, math.nan], ()),
        ("an infinite value", WEEKS[:2], [1, math.inf], ()),
        ("an anomaly index past the end", WEEKS[:2], [1, 2], (2,)),
    ],
)
def test_bad_input_is_refused(
    chart: Chart, case: str, labels: list[str], values: list[float | None], anomalies: tuple[int, ...]
) -> None:
    with pytest.raises(ValueError):
        chart(labels, values, title="t", anomalies=anomalies)
