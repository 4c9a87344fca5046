"""The vote result charts (votes/charts.py): plain functions, plain tests, no database."""

from __future__ import annotations

import re
import unicodedata
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import pytest
from markupsafe import Markup

from votes import charts
from votes.charts import approval_bars, merit_profile, yes_no_bar
from votes.scales import GRADE_COLOURS, SCALES

SVG = "{http://www.w3.org/2000/svg}"
BAR_START = charts.MARGIN
BAR_WIDTH = charts.WIDTH - 2 * charts.MARGIN
MIDDLE = charts.WIDTH / 2

FRENCH = {
    "Excellent": "Excellent",
    "Très bien": "Très bien",
    "Bien": "Bien",
    "Assez bien": "Assez bien",
    "Passable": "Passable",
    "Insuffisant": "Insuffisant",
    "À rejeter": "À rejeter",
}
SEVEN = [(key, FRENCH[key]) for key in SCALES["seven"]]
FIVE = [(key, FRENCH[key]) for key in SCALES["five"]]
ARABIC_LABEL = "حديقة مشتركة عند مدخل الحي"


def _options() -> list[dict]:
    return [
        {"label": "Jardin partagé", "tally": [5, 8, 12, 6, 4, 2, 3], "majority_grade": 2},
        {"label": "Navette vers le métro", "tally": [20, 10, 5, 2, 1, 1, 1], "majority_grade": 1},
    ]


def parse(markup: Markup) -> ET.Element:
    assert isinstance(markup, Markup)
    root = ET.fromstring(str(markup))  # noqa: S314 — our own output; well-formed or it raises
    assert root.tag == f"{SVG}svg"
    return root


def groups(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "option"]


def of_class(element: ET.Element, tag: str, css_class: str) -> list[ET.Element]:
    return [e for e in element.iter(f"{SVG}{tag}") if e.get("class") == css_class]


def box(rect: ET.Element) -> tuple[float, float]:
    """(left, right) of a rect."""
    left = float(rect.get("x"))
    return left, left + float(rect.get("width"))


# WCAG 2.x, written again here so that the module's own formula is checked, not trusted.
def luminance(colour: str) -> float:
    def linear(channel: str) -> float:
        c = int(channel, 16) / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(colour[i : i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


# Well-formed, accessible, deterministic ----------------------------------------------------


@pytest.mark.parametrize("rtl", [False, True])
def test_every_chart_is_well_formed_svg_with_an_accessible_name(rtl: bool) -> None:
    made = [
        merit_profile(_options(), SEVEN, rtl=rtl, id_prefix="m"),
        approval_bars([{"label": "A", "approvals": 3}], 5, rtl=rtl, id_prefix="a"),
        yes_no_bar(3, 2, 1, rtl=rtl, id_prefix="y"),
    ]
    for markup in made:
        root = parse(markup)
        assert root.get("role") == "img"
        assert root.get("width") == "100%"
        assert root.get("viewBox").startswith(f"0 0 {charts.WIDTH} ")
        assert root.get("direction") == ("rtl" if rtl else "ltr")
        assert "Noto Sans Arabic" in root.get("font-family")
        title_id, desc_id = root.get("aria-labelledby").split()
        by_id = {e.get("id"): e for e in root.iter() if e.get("id")}
        assert by_id[title_id].tag == f"{SVG}title"
        assert by_id[desc_id].tag == f"{SVG}desc"
        assert by_id[title_id].text
        assert by_id[desc_id].text
        # The chart's own title and desc come first, so that they name the whole image.
        assert [child.tag for child in root][:2] == [f"{SVG}title", f"{SVG}desc"]


def test_only_what_weasyprint_draws() -> None:
    markup = str(merit_profile(_options(), SEVEN, rtl=True))
    markup += str(approval_bars([{"label": "A", "approvals": 3}], 5))
    markup += str(yes_no_bar(3, 2, 1))
    tags = set(re.findall(r"<([a-zA-Z]+)", markup))
    assert tags <= {"svg", "g", "rect", "line", "text", "title", "desc"}
    for forbidden in ("var(", "foreignObject", "style=", "href", "url(", "@import", "<image"):
        assert forbidden not in markup


def test_ids_come_from_the_prefix_and_are_checked() -> None:
    root = parse(merit_profile(_options(), SEVEN, id_prefix="vote-12"))
    assert root.get("aria-labelledby") == "vote-12-title vote-12-desc"
    with pytest.raises(ValueError, match="id_prefix"):
        merit_profile(_options(), SEVEN, id_prefix='x" onload="alert(1)')
    with pytest.raises(ValueError, match="id_prefix"):
        yes_no_bar(1, 1, 1, id_prefix="1abc")


def test_same_input_same_bytes_and_distinct_default_ids() -> None:
    first = merit_profile(_options(), SEVEN)
    assert merit_profile(_options(), SEVEN) == first
    assert yes_no_bar(3, 2, 1) == yes_no_bar(3, 2, 1)
    other = merit_profile(_options()[:1], SEVEN)
    assert parse(first).get("aria-labelledby") != parse(other).get("aria-labelledby")
    objects = [SimpleNamespace(**option) for option in _options()]
    assert merit_profile(objects, SEVEN) == first  # objects and dicts alike


def test_coordinates_have_at_most_one_decimal_and_text_is_large_enough() -> None:
    tally = [1, 1, 1, 0, 0, 0, 1]  # thirds and quarters: endless decimals
    options = [{"label": "Tiers", "tally": tally, "majority_grade": 1}, *_options()]
    markup = str(merit_profile(options, SEVEN, rtl=True))
    markup += str(approval_bars([{"label": "A", "approvals": 1}], 3))
    markup += str(yes_no_bar(1, 1, 1))
    for name, value in re.findall(r' (x|y|x1|x2|y1|y2|width|height)="([^"]*)"', markup):
        if value != "100%":
            assert re.fullmatch(r"-?\d+(\.\d)?", value), (name, value)
    sizes = [float(size) for size in re.findall(r'font-size="([^"]*)"', markup)]
    assert sizes
    assert min(sizes) >= 12


# Merit profiles --------------------------------------------------------------------------------


@pytest.mark.parametrize("rtl", [False, True])
def test_segments_are_proportional_and_fill_the_bar(rtl: bool) -> None:
    root = parse(merit_profile(_options(), SEVEN, rtl=rtl))
    for group, option in zip(groups(root), _options(), strict=True):
        segments = of_class(group, "rect", "segment")
        counts = [count for count in option["tally"] if count]
        total = sum(option["tally"])
        assert len(segments) == len(counts)
        widths = [float(s.get("width")) for s in segments]
        for width, count in zip(widths, counts, strict=True):
            assert width == pytest.approx(BAR_WIDTH * count / total, abs=0.11)
        assert sum(widths) == pytest.approx(BAR_WIDTH, abs=0.01)
        lefts = sorted(box(s)[0] for s in segments)
        rights = sorted(box(s)[1] for s in segments)
        assert lefts[0] == pytest.approx(BAR_START)
        assert rights[-1] == pytest.approx(BAR_START + BAR_WIDTH)
        for right, left in zip(rights, lefts[1:], strict=False):
            assert left == pytest.approx(right, abs=0.01)  # no gap, no overlap


@pytest.mark.parametrize("rtl", [False, True])
def test_grades_run_best_first_from_the_start_edge(rtl: bool) -> None:
    root = parse(merit_profile(_options(), SEVEN, rtl=rtl))
    expected = [GRADE_COLOURS[key] for key, _ in SEVEN]
    for group in groups(root):
        segments = sorted(of_class(group, "rect", "segment"), key=lambda s: box(s)[0])
        if rtl:
            segments.reverse()  # right to left
        assert [s.get("fill") for s in segments] == expected
    best = of_class(groups(root)[0], "rect", "segment")[0]
    assert best.get("fill") == GRADE_COLOURS["Excellent"]
    edge = BAR_START + BAR_WIDTH if rtl else BAR_START
    assert (box(best)[1] if rtl else box(best)[0]) == pytest.approx(edge)


@pytest.mark.parametrize("rtl", [False, True])
def test_legend_lists_every_grade_in_order(rtl: bool) -> None:
    options = [{"label": "Jardin", "tally": [1, 2, 3, 2, 1], "majority_grade": 2}]
    root = parse(merit_profile(options, FIVE, rtl=rtl))
    swatches = of_class(root, "rect", "swatch")
    assert [s.get("fill") for s in swatches] == [GRADE_COLOURS[key] for key, _ in FIVE]
    assert [t.text for t in of_class(root, "text", "legend")] == [label for _, label in FIVE]
    first, second = (box(s)[0] for s in swatches[:2])
    assert (first > second) if rtl else (first < second)
    lowest_bar = max(float(s.get("y")) for s in of_class(root, "rect", "segment"))
    assert all(float(s.get("y")) > lowest_bar for s in swatches)  # under the bars


@pytest.mark.parametrize("rtl", [False, True])
def test_median_line_at_half_over_every_bar(rtl: bool) -> None:
    options = [*_options(), {"label": "Personne", "tally": [0] * 7, "majority_grade": None}]
    root = parse(merit_profile(options, SEVEN, rtl=rtl))
    medians = of_class(root, "line", "median")
    assert len(medians) == len(options)
    bars = [
        (of_class(g, "rect", "segment") or of_class(g, "rect", "empty"))[0] for g in groups(root)
    ]
    for line, bar in zip(medians, bars, strict=True):
        assert float(line.get("x1")) == float(line.get("x2")) == MIDDLE
        assert line.get("stroke-dasharray")
        top, bottom = float(bar.get("y")), float(bar.get("y")) + float(bar.get("height"))
        assert float(line.get("y1")) <= top
        assert float(line.get("y2")) >= bottom
    (label,) = of_class(root, "text", "median-label")
    assert label.text == "50\u202f%"
    assert float(label.get("x")) == MIDDLE
    assert label.get("text-anchor") == "middle"


def test_percentages_in_segments_and_clear_of_the_median() -> None:
    root = parse(merit_profile(_options(), SEVEN))
    texts = of_class(groups(root)[0], "text", "segment-text")
    shown = [t.text for t in texts]
    assert "30\u202f%" in shown  # 12 of 40
    assert "13\u202f%" in shown  # 5 of 40, rounded half up from 12.5
    for text in texts:
        width = charts.text_width(text.text, charts.SMALL_SIZE, bold=True)
        assert abs(float(text.get("x")) - MIDDLE) >= width / 2  # the line never crosses it


def test_segment_text_contrast_is_at_least_aa() -> None:
    options = [
        {"label": str(i), "tally": [1 if j == i else 0 for j in range(7)], "majority_grade": i}
        for i in range(7)
    ]
    root = parse(merit_profile(options, SEVEN))
    checked = 0
    for group in groups(root):
        (segment,) = of_class(group, "rect", "segment")
        (text,) = of_class(group, "text", "segment-text")
        left, right = box(segment)
        assert left <= float(text.get("x")) <= right
        assert text.get("fill") in ("#000000", "#ffffff")
        assert contrast(text.get("fill"), segment.get("fill")) >= 4.5
        checked += 1
    assert checked == 7
    for colour in [*GRADE_COLOURS.values(), *charts.YES_NO_COLOURS, charts.APPROVAL_COLOUR]:
        chosen = charts.text_colour_on(colour)
        assert contrast(chosen, colour) >= 4.5, colour
        assert charts.contrast_ratio(chosen, colour) == pytest.approx(contrast(chosen, colour))


def test_description_tells_each_option_and_its_majority_grade() -> None:
    root = parse(merit_profile(_options(), SEVEN, id_prefix="p"))
    desc = root.find(f"{SVG}desc").text
    assert "Jardin partagé: majority grade Bien" in desc
    assert "Navette vers le métro: majority grade Très bien" in desc
    assert "Bien 12 (30.0\u202f%)" in desc


def test_sentences_come_from_the_caller() -> None:
    def describe_fr(label: str, grade: str | None, parts: list[tuple[str, int, float]]) -> str:
        counted = sum(count for _, count, _ in parts)
        return f"« {label} » : mention {grade}, {counted} votants."

    root = parse(
        merit_profile(
            _options(),
            SEVEN,
            title="Profils de mérite",
            describe=describe_fr,
            caption=lambda grade: f"Mention majoritaire : {grade}",
            empty_label="Aucun vote",
        )
    )
    assert root.find(f"{SVG}title").text == "Profils de mérite"
    desc = root.find(f"{SVG}desc").text
    assert desc == (
        "« Jardin partagé » : mention Bien, 40 votants. "
        "« Navette vers le métro » : mention Très bien, 40 votants."
    )
    captions = [t.text for t in of_class(root, "text", "majority")]
    assert captions == ["Mention majoritaire : Bien", "Mention majoritaire : Très bien"]
    markup = str(merit_profile(_options(), SEVEN, caption=None))
    assert "Majority grade" not in markup


def test_labels_are_escaped() -> None:
    options = [
        {"label": "<script>alert(1)</script> & co", "tally": [1] * 7, "majority_grade": 3},
        {"label": Markup("<b>gras</b> &amp; net"), "tally": [1] * 7, "majority_grade": 3},
        {"label": "bip\x07\x00 \ufffe fin\nligne", "tally": [1] * 7, "majority_grade": 3},
    ]
    chart = merit_profile(options, SEVEN)
    markup = str(chart)
    assert "<script" not in markup
    assert "<b>" not in markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in markup
    assert "&lt;b&gt;gras&lt;/b&gt; &amp; net" in markup  # Markup is shown, not obeyed
    root = parse(chart)
    titles = [g.find(f"{SVG}title").text for g in groups(root)]
    assert titles == ["<script>alert(1)</script> & co", "<b>gras</b> & net", "bip fin ligne"]
    desc = root.find(f"{SVG}desc").text
    assert "<script>alert(1)</script> & co: majority grade Assez bien" in desc


def test_long_labels_are_wrapped_then_cut_with_the_full_text_in_a_title() -> None:
    label = " ".join(["Rénovation de l'éclairage public du boulevard"] * 6)
    root = parse(merit_profile([{"label": label, "tally": [1] * 7, "majority_grade": 3}], SEVEN))
    (group,) = groups(root)
    lines = [t.text for t in of_class(group, "text", "label")]
    assert len(lines) == charts.MAX_LABEL_LINES
    assert lines[-1].endswith("…")
    assert group.find(f"{SVG}title").text == label
    for line in lines:
        width = charts.text_width(line, charts.LABEL_SIZE, bold=True)
        assert width <= BAR_WIDTH


def test_an_option_without_voters_is_an_empty_outline() -> None:
    options = [{"label": "Personne", "tally": [0] * 7, "majority_grade": None}, *_options()]
    markup = merit_profile(options, SEVEN, empty_label="Aucun vote")
    assert "nan" not in markup.lower()
    assert "inf" not in markup.lower()
    root = parse(markup)
    empty_group = groups(root)[0]
    assert of_class(empty_group, "rect", "segment") == []
    (outline,) = of_class(empty_group, "rect", "empty")
    assert outline.get("stroke")
    assert float(outline.get("width")) == pytest.approx(BAR_WIDTH - 1)
    assert [t.text for t in of_class(empty_group, "text", "empty-text")] == ["Aucun vote"]
    assert of_class(empty_group, "text", "majority") == []
    assert "Personne: no votes." in root.find(f"{SVG}desc").text
    # Even a majority grade given by mistake for an empty tally is not shown.
    wrong = [{"label": "Personne", "tally": [0] * 7, "majority_grade": 0}]
    assert "majority grade" not in parse(merit_profile(wrong, SEVEN)).find(f"{SVG}desc").text


def test_bad_tallies_are_refused() -> None:
    with pytest.raises(ValueError, match="tally"):
        merit_profile([{"label": "A", "tally": [1, 2], "majority_grade": 0}], SEVEN)
    with pytest.raises(ValueError, match="negative"):
        merit_profile([{"label": "A", "tally": [1, -1, 0, 0, 0], "majority_grade": 0}], FIVE)


def test_no_option_still_draws_a_legend() -> None:
    root = parse(merit_profile([], SEVEN))
    assert len(of_class(root, "rect", "swatch")) == 7
    assert of_class(root, "line", "median") == []


# Right to left and Arabic ----------------------------------------------------------------------


def test_arabic_label_is_kept_whole_and_drawn_in_visual_order() -> None:
    options = [{"label": ARABIC_LABEL, "tally": [1, 2, 3, 4, 3, 2, 1], "majority_grade": 3}]
    root = parse(merit_profile(options, SEVEN, rtl=True, id_prefix="ar"))
    (group,) = groups(root)
    assert group.find(f"{SVG}title").text == ARABIC_LABEL
    assert root.find(f"{SVG}desc").text.startswith(ARABIC_LABEL + ": ")
    (line,) = of_class(group, "text", "label")
    # Drawn as seen: presentation forms, right to left; read back, it is the label itself.
    assert line.get("unicode-bidi") == "bidi-override"
    assert line.get("direction") == "ltr"
    assert unicodedata.normalize("NFKC", line.text[::-1]) == ARABIC_LABEL
    assert all("\ufe70" <= ch <= "\ufeff" or ch == " " for ch in line.text)
    # It hugs the right edge, where an RTL chart starts.
    assert float(line.get("x")) == charts.WIDTH - charts.MARGIN
    assert line.get("text-anchor") == "end"


def test_rtl_chart_anchors_flip() -> None:
    ltr = parse(merit_profile(_options(), SEVEN))
    rtl = parse(merit_profile(_options(), SEVEN, rtl=True))
    for root, start_x, anchors in (
        (ltr, charts.MARGIN, ("start", "end")),
        (rtl, charts.WIDTH - charts.MARGIN, ("end", "start")),
    ):
        label = of_class(root, "text", "label")[0]
        caption = of_class(root, "text", "majority")[0]
        assert float(label.get("x")) == start_x
        assert (label.get("text-anchor"), caption.get("text-anchor")) == anchors
        assert float(caption.get("x")) == charts.WIDTH - start_x
        # Every text sets its own direction: the page's dir="rtl" must not leak in.
        assert all(t.get("direction") == "ltr" for t in root.iter(f"{SVG}text"))


def test_french_label_in_an_arabic_chart_stays_as_typed() -> None:
    root = parse(merit_profile(_options(), SEVEN, rtl=True))
    labels = [t.text for t in of_class(root, "text", "label")]
    assert labels == ["Jardin partagé", "Navette vers le métro"]
    assert all(t.get("unicode-bidi") is None for t in of_class(root, "text", "label"))


def test_visual_order_follows_the_bidi_algorithm() -> None:
    assert charts.visual_order("Jardin partagé (nord) 12 %", "ltr") == "Jardin partagé (nord) 12 %"
    assert charts.visual_order("ساحة Castellane رقم 3", "rtl") == "3 مقر Castellane ةحاس"
    assert charts.visual_order("رقم 12", "rtl") == "12 مقر"
    assert charts.visual_order("(أ)", "rtl") == "(أ)"  # brackets mirrored, then reversed
    # A number after Arabic letters is an Arabic number: it joins the right-to-left run.
    assert charts.visual_order("Navette مترو 2", "ltr") == "Navette 2 ورتم"
    assert charts.visual_order("", "rtl") == ""


def test_arabic_letters_take_their_joined_forms() -> None:
    # meem initial, reh final; feh initial, waw final; dad alone
    assert charts.shape_arabic("مرفوض") == "\ufee3\ufeae\ufed3\ufeee\ufebd"
    assert charts.shape_arabic("لا") == "\ufefb"  # lam-alef
    assert charts.shape_arabic("الا") == "\ufe8d\ufefb"  # alef, then lam-alef alone
    assert charts.shape_arabic("جدًا") == "\ufe9f\ufeaa\ufe8d"  # the tanween is left out
    assert charts.shape_arabic("Bien 12") == "Bien 12"


# Approval bars ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rtl", [False, True])
def test_approval_bars_are_shares_of_participants(rtl: bool) -> None:
    options = [
        SimpleNamespace(label="Fête de quartier", approvals=30),
        SimpleNamespace(label="Cinéma <plein air>", approvals=10),
        SimpleNamespace(label=ARABIC_LABEL, approvals=0),
    ]
    markup = approval_bars(options, 40, rtl=rtl, id_prefix="ap")
    assert "&lt;plein air&gt;" in markup
    root = parse(markup)
    assert len(groups(root)) == 3
    bars = of_class(root, "rect", "bar")
    assert [float(b.get("width")) for b in bars] == [
        pytest.approx(BAR_WIDTH * 0.75),
        pytest.approx(BAR_WIDTH * 0.25),
    ]
    for bar in bars:
        left, right = box(bar)
        assert (right if rtl else left) == pytest.approx(
            BAR_START if not rtl else charts.WIDTH - BAR_START
        )
    tracks = of_class(root, "rect", "track")
    assert all(float(t.get("width")) == BAR_WIDTH for t in tracks)
    values = [t.text for t in of_class(root, "text", "value")]
    assert values == ["30 (75\u202f%)", "10 (25\u202f%)", "0 (0\u202f%)"]
    desc = root.find(f"{SVG}desc").text
    assert "Fête de quartier: 30 approvals out of 40 participants (75.0\u202f%)." in desc
    assert "Cinéma <plein air>: 10 approvals" in desc
    assert ARABIC_LABEL in desc
    for text in of_class(root, "text", "value"):
        on_bar = text.get("fill") == charts.text_colour_on(charts.APPROVAL_COLOUR)
        background = charts.APPROVAL_COLOUR if on_bar else charts.TRACK
        assert contrast(text.get("fill"), background) >= 4.5


def test_approval_value_sits_past_the_end_of_a_short_bar() -> None:
    root = parse(approval_bars([{"label": "A", "approvals": 1}], 10))
    (bar,) = of_class(root, "rect", "bar")
    (value,) = of_class(root, "text", "value")
    assert float(value.get("x")) > box(bar)[1]
    assert value.get("text-anchor") == "start"
    root = parse(approval_bars([{"label": "A", "approvals": 1}], 10, rtl=True))
    (bar,) = of_class(root, "rect", "bar")
    (value,) = of_class(root, "text", "value")
    assert float(value.get("x")) < box(bar)[0]
    assert value.get("text-anchor") == "end"


def test_approval_bars_without_participants() -> None:
    markup = approval_bars([{"label": "A", "approvals": 0}], 0, empty_label="Aucun vote")
    assert "nan" not in markup.lower()
    root = parse(markup)
    assert of_class(root, "rect", "bar") == []
    assert len(of_class(root, "rect", "empty")) == 1
    assert [t.text for t in of_class(root, "text", "empty-text")] == ["Aucun vote"]


# For, against, abstain -------------------------------------------------------------------------


@pytest.mark.parametrize("rtl", [False, True])
def test_yes_no_bar_is_one_stacked_bar(rtl: bool) -> None:
    root = parse(
        yes_no_bar(
            24,
            12,
            4,
            ("Pour", "Contre", "Abstention"),
            rtl=rtl,
            title="Pour, contre, abstention",
            describe=lambda parts: " ; ".join(f"{n} : {c}" for n, c, _ in parts),
        )
    )
    segments = sorted(of_class(root, "rect", "segment"), key=lambda s: box(s)[0])
    if rtl:
        segments.reverse()
    assert [s.get("fill") for s in segments] == list(charts.YES_NO_COLOURS)
    assert len(set(charts.YES_NO_COLOURS)) == 3
    widths = [float(s.get("width")) for s in segments]
    assert widths == [
        pytest.approx(BAR_WIDTH * 0.6, abs=0.11),
        pytest.approx(BAR_WIDTH * 0.3, abs=0.11),
        pytest.approx(BAR_WIDTH * 0.1, abs=0.11),
    ]
    assert sum(widths) == pytest.approx(BAR_WIDTH, abs=0.01)
    assert [s.find(f"{SVG}title").text for s in segments] == [
        "Pour — 24 (60\u202f%)",
        "Contre — 12 (30\u202f%)",
        "Abstention — 4 (10\u202f%)",
    ]
    texts = of_class(root, "text", "segment-text")
    assert [t.text for t in sorted(texts, key=lambda t: float(t.get("x")), reverse=rtl)] == [
        "60\u202f%",
        "30\u202f%",
        "10\u202f%",
    ]
    for text in texts:
        (segment,) = [s for s in segments if box(s)[0] <= float(text.get("x")) <= box(s)[1]]
        assert contrast(text.get("fill"), segment.get("fill")) >= 4.5
    legend = [t.text for t in of_class(root, "text", "legend")]
    assert legend == ["Pour (24)", "Contre (12)", "Abstention (4)"]
    assert root.find(f"{SVG}title").text == "Pour, contre, abstention"
    assert root.find(f"{SVG}desc").text == "Pour : 24 ; Contre : 12 ; Abstention : 4"


def test_yes_no_bar_default_description_and_no_votes() -> None:
    root = parse(yes_no_bar(1, 1, 2))
    assert (
        root.find(f"{SVG}desc").text
        == "For: 1 (25.0\u202f%); Against: 1 (25.0\u202f%); Abstain: 2 (50.0\u202f%)."
    )
    markup = yes_no_bar(0, 0, 0)
    assert "nan" not in markup.lower()
    root = parse(markup)
    assert of_class(root, "rect", "segment") == []
    assert len(of_class(root, "rect", "empty")) == 1
    assert [t.text for t in of_class(root, "text", "empty-text")] == ["No votes"]


def test_arabic_legend_in_a_yes_no_bar() -> None:
    root = parse(yes_no_bar(2, 1, 0, ("مع", "ضد", "امتناع"), rtl=True))
    legend = of_class(root, "text", "legend")
    assert [unicodedata.normalize("NFKC", t.text) for t in legend] == [
        "(2) عم",
        "(1) دض",
        "(0) عانتما",
    ]
    # swatches run from the right
    swatches = of_class(root, "rect", "swatch")
    assert box(swatches[0])[1] == pytest.approx(charts.WIDTH - charts.MARGIN)
