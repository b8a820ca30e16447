"""plot.png (reducer/plot.py) as a newcomer reads it: colours told apart by colour-blind readers,
a legend beside the data rather than on it, dense regions that show their density, the label
column's name, the rows and the run's date, and the quality in words."""

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from reducer import plot, quality  # noqa: E402
from reducer.published import Quality  # noqa: E402

QUALITY = {"trustworthiness_5": 0.936, "knn_accuracy": 0.861,
           "pca": {"trustworthiness_5": 0.830, "knn_accuracy": 0.642}}


def clusters(classes, per_class=50, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=5, size=(classes, 2))
    coordinates = np.concatenate([c + rng.normal(size=(per_class, 2)) for c in centres])
    labels = np.repeat(np.array([f"class {k}" for k in range(classes)], dtype=object), per_class)
    return coordinates, labels


def figure(coordinates, labels, lines=("a subtitle",), label_name="species", warning=None):
    with plt.rc_context(plot.LITERAL_TEXT):
        built = plot.build_figure(plt, "job", coordinates, labels, list(lines), label_name, warning)
    built.canvas.draw()
    return built


def test_palette_is_colour_blind_safe_and_distinct_up_to_ten_classes():
    assert plot.class_colours(3) == ["#0072B2", "#E69F00", "#009E73"]  # Okabe-Ito: blue, orange, green
    assert plot.class_colours(8) == list(plot.OKABE_ITO)
    for count in range(1, 11):
        colours = [to_hex(c) for c in plot.class_colours(count)]
        assert len(set(colours)) == count
    assert plot.class_colours(21) is None


def test_the_three_class_plot_uses_okabe_ito_not_black_green_red():
    built = figure(*clusters(3))
    drawn = [to_hex(c.get_facecolor()[0]) for c in built.axes[0].collections]
    assert drawn == [c.lower() for c in plot.OKABE_ITO[:3]]
    plt.close(built)


def test_legend_sits_outside_the_data_and_names_the_label_column():
    built = figure(*clusters(10))
    legend = built.legends[0]
    assert legend.get_title().get_text() == "species"
    assert [t.get_text() for t in legend.get_texts()] == [f"class {k}" for k in range(10)]
    box, axes = legend.get_window_extent(), built.axes[0].get_window_extent()
    assert box.x0 >= axes.x1  # beside the axes, over no point
    assert all(handle.get_alpha() == 1.0 for handle in legend.legend_handles)  # the key stays readable
    plt.close(built)


def test_transparency_and_size_follow_the_number_of_points():
    styles = [plot.marker_style(n) for n in (150, 1797, 10_000, 50_000)]
    alphas, sizes = zip(*styles)
    assert alphas[0] == pytest.approx(0.9) and alphas[-1] < 0.2
    assert list(alphas) == sorted(alphas, reverse=True) and list(sizes) == sorted(sizes, reverse=True)
    coordinates, labels = clusters(3, per_class=3000)
    built = figure(coordinates, labels)
    assert built.axes[0].collections[0].get_alpha() == pytest.approx(plot.marker_style(9000)[0])
    plt.close(built)


def test_a_continuous_label_gets_a_colour_bar_titled_with_its_column():
    rng = np.random.default_rng(1)
    built = figure(rng.normal(size=(500, 2)), rng.normal(size=500) * 100, label_name="price")
    bar, = [a for a in built.axes if a is not built.axes[0]]
    assert bar.get_ylabel() == "price"
    plt.close(built)


def test_numbers_read_from_a_csv_as_text_are_coloured_by_value_and_listed_in_order():
    """A CSV's labels arrive as text: a value label (120 distinct numbers) is coloured by its value
    under the column's name, not by its rank as text ("10.68" beside "1.7"), as the map page does;
    a few numeric classes are listed 2 before 10."""
    rng = np.random.default_rng(2)
    values = rng.uniform(0.1, 11.0, size=120)
    texts = np.array([f"{v:.4g}" for v in values], dtype=object)
    built = figure(rng.normal(size=(120, 2)), texts, label_name="y")
    bar, = [a for a in built.axes if a is not built.axes[0]]
    assert bar.get_ylabel() == "y"
    drawn = built.axes[0].collections[0].get_array()
    np.testing.assert_allclose(np.asarray(drawn), texts.astype(float))
    plt.close(built)
    classes = np.repeat(np.array(["10", "2", "1"], dtype=object), 20)
    built = figure(rng.normal(size=(60, 2)), classes, label_name="grade")
    assert [t.get_text() for t in built.legends[0].get_texts()] == ["1", "2", "10"]
    plt.close(built)


def test_subtitle_says_rows_run_date_and_quality_in_words():
    lines = plot.caption(1797, 1797, "2026-11-01T02:00:07+00:00", Quality.from_json(QUALITY))
    assert lines[0] == "1,797 rows, run 2026-11-01 02:00 UTC"
    assert "neighbours kept (trustworthiness): 0.94, PCA 0.83; 1 = all kept, 0.5 = random" in lines
    assert "points whose 10 nearest map neighbours mostly share their label: 86%, PCA 64%" in lines
    assert not any("@" in line for line in lines)
    sampled = plot.caption(50_000, 1_000_000, "2026-11-01T02:00:07Z", None)
    assert sampled == ["50,000 of 1,000,000 rows (a fixed-seed sample), run 2026-11-01 02:00 UTC"]


def test_draw_takes_values_and_reads_nothing_beside_the_plot(tmp_path):
    """publish.py hands draw() the label column's name, the table's rows, the run's time and its
    quality as values: files beside the plot are not read, no text is parsed back into numbers."""
    (tmp_path / "model.json").write_text(json.dumps({"label_column": "not this"}))
    (tmp_path / "embedding.csv").write_text("id,label,component_1,component_2\n" + "0,a,1,2\n" * 10)
    coordinates, labels = clusters(3, per_class=20)
    captured = {}
    original = plot.build_figure

    def spy(plt_, title, coordinates_, labels_, lines, label_name=None, warning=None):
        captured.update(lines=lines, label_name=label_name, warning=warning)
        return original(plt_, title, coordinates_, labels_, lines, label_name, warning)

    plot.build_figure = spy
    try:
        plot.draw(tmp_path / "plot.png", "wine", coordinates, labels, label_name="cultivar", rows=70_000,
                  run_at="2026-11-01T02:00:07Z", quality=Quality.from_json(QUALITY))
    finally:
        plot.build_figure = original
    assert captured["label_name"] == "cultivar" and captured["warning"] is None
    assert captured["lines"][0] == "60 of 70,000 rows (a fixed-seed sample), run 2026-11-01 02:00 UTC"
    assert captured["lines"][1].startswith("neighbours kept (trustworthiness): 0.94, PCA 0.83")
    assert not hasattr(plot, "quality_from_subtitle")


@pytest.mark.parametrize("dims", [2, 3])
def test_the_file_keeps_its_name_size_and_literal_labels(tmp_path, dims):
    rng = np.random.default_rng(2)
    labels = np.array(["$\\nosuchcmd$", "_hidden", "$\\alpha$"] * 20, dtype=object)
    path = tmp_path / "plot.png"
    plot.draw(path, "awkward $x$", rng.normal(size=(60, dims)), labels, label_name="$kind$", rows=60,
              run_at="2026-11-01T02:00:00+00:00")
    image = plt.imread(path)
    assert image.shape[:2] == (700, 800)
    with plt.rc_context(plot.LITERAL_TEXT):
        built = plot.build_figure(plt, "awkward", rng.normal(size=(60, dims)), labels, ["x"], "$kind$")
    built.canvas.draw()
    legend = built.legends[0]
    assert sorted(t.get_text() for t in legend.get_texts()) == sorted(set(labels))
    assert legend.get_title().get_text() == "$kind$"
    plt.close(built)


@pytest.mark.parametrize("stretch", [(1.0, 1.0), (20.0, 0.5)])
def test_both_axes_have_the_same_scale(stretch):
    """A map 40 times wider than tall is drawn so: a unit is as long across as up."""
    coordinates, labels = clusters(3)
    built = figure(coordinates * np.array(stretch), labels)
    axes = built.axes[0]
    box = axes.get_window_extent()
    (x0, x1), (y0, y1) = axes.get_xlim(), axes.get_ylim()
    assert (x1 - x0) / box.width == pytest.approx((y1 - y0) / box.height, rel=1e-3)
    legend = built.legends[0].get_window_extent()
    assert legend.x0 >= box.x1  # the legend stays beside the data
    plt.close(built)


def warning_texts(built):
    return [t for t in built.findobj(matplotlib.text.Text) if "warning" in t.get_text()]


def test_a_stacked_map_says_so_in_red_under_the_axes(tmp_path):
    """A new user saw two dots under "neighbours kept 0.88, labels 100%" and nothing else: the
    manifest's stacked-rows warning, as one short red line under the axes. The line is made from
    the manifest's `map` section by quality.stacking_headline and handed to draw()."""
    section = {"stacked_share": 0.63, "stacked_distance": 0.001,
               "stacked_groups": [{"label": "g2", "rows": 20, "stacked_share": 0.9}]}
    line = quality.stacking_headline(section)
    assert line == ("warning: 63% of the distinct rows sit on top of others (most of group 'g2'): "
                    "groups may show as single points")
    built = figure(*clusters(3), lines=plot.caption(150, 150, None, Quality.from_json(QUALITY)), warning=line)
    (text,) = warning_texts(built)
    assert " ".join(text.get_text().split()) == line and to_hex(text.get_color()) == plot.WARNING_COLOUR.lower()
    box, axes = text.get_window_extent(), built.axes[0].get_tightbbox()
    assert box.y1 <= axes.y0 and box.x0 >= 0 and box.x1 <= 800  # under the axes and their labels, whole
    assert built.axes[0].get_title().startswith("150 rows")  # the quality words stay where they were
    plt.close(built)
    # A long group name is cut, so the line stays short; a class-only warning has its own words.
    named = quality.stacking_headline({"stacked_share": 0.1, "stacked_groups": [
        {"label": "a label far too long for one short line", "rows": 40, "stacked_share": 0.97}]})
    assert named == "warning: most distinct rows of group 'a label far too l...' sit on top of one another"


@pytest.mark.parametrize("section", [
    None, {}, {"stacked_share": 0.0}, {"stacked_share": 0.24, "stacked_groups": []},
    {"stacked_share": 0.25}, {"stacked_share": 0.1, "stacked_groups": [{"label": "a", "rows": 5, "stacked_share": 0.5}]},
    {"stacked_share": 1.0, "stacked_groups": [{"label": str(k), "rows": 9, "stacked_share": 1.0} for k in range(5)]}])
def test_the_plot_line_comes_exactly_with_the_manifests_warning(section):
    """One decision: plot.png's line is there exactly when the manifest's `warnings` get the stacked-rows warning."""
    headline, warning = quality.stacking_headline(section), quality.stacking_warning(section)
    assert (headline is None) == (warning is None) == (not quality.stacking_flagged(section))
    assert headline is None or (headline.startswith("warning: ") and len(headline) <= 140)


def test_a_map_without_the_warning_is_drawn_as_before(tmp_path):
    """No warning, no line, and not one byte of plot.png changes (its bytes do not depend on the time it is drawn)."""
    coordinates, labels = clusters(3)
    built = figure(coordinates, labels)
    assert warning_texts(built) == []
    plt.close(built)
    arguments = dict(label_name="species", rows=150, run_at="2026-11-01T02:00:00Z", quality=Quality.from_json(QUALITY))
    plot.draw(tmp_path / "before.png", "job", coordinates, labels, **arguments)
    plot.draw(tmp_path / "none.png", "job", coordinates, labels, warning=None, **arguments)
    plot.draw(tmp_path / "warned.png", "job", coordinates, labels, warning="warning: stacked", **arguments)
    assert (tmp_path / "none.png").read_bytes() == (tmp_path / "before.png").read_bytes()
    assert (tmp_path / "warned.png").read_bytes() != (tmp_path / "before.png").read_bytes()
