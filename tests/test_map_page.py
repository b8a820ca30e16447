"""The map page's tools in Debian's Chromium: search, colour by a column, box selection and its
CSV download, a row count that follows what is shown, equal axis scales; a stale map says so;
the index fits a 1280-pixel window. A real project: a csv job with kept columns, published on
its first night, failed on its second."""

import csv
import io
import re

import pandas as pd
import pytest

from conftest import Project
from test_report import EXACT, Visit, browser, hover, isolated_point, visit  # noqa: F401 (fixtures)

JOB = """
[dataset]
name = "csv"
path = "../Data/flowers.csv"
id = "flower"
label = "species"
features = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
keep = ["name", "garden", "petal_width"]
[model]
objective = "reconstruction"
[training]
epochs = 20
batch_size = 16
"""


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    project = Project(tmp_path_factory.mktemp("maps") / "project")
    frame = pd.read_csv(project.copy_data("iris.csv"))
    frame.insert(0, "flower", [f"F{k:04d}" for k in range(len(frame))])
    frame["name"] = [f"<b>flower</b> {k}" for k in range(len(frame))]  # hostile text, shown as text
    frame["garden"] = ["north" if k % 3 else "south" for k in range(len(frame))]
    path = project.root / "Data" / "flowers.csv"
    frame.to_csv(path, index=False)
    project.job("flowers", JOB)
    first = project.run("run", "jobs/flowers.toml")
    assert first.returncode == 0, first.stderr
    path.write_text(path.read_text().replace("5.1,3.5", "5.1,oops", 1))  # the second night's data is bad
    second = project.run("run", "jobs/flowers.toml")
    assert second.returncode != 0
    return project, frame


def test_a_stale_map_says_so_at_the_top(nights, visit):
    project, _ = nights
    page = visit(project.outputs / "flowers" / "map.html", project.outputs)
    banner = page.page.locator("#stale").inner_text()
    assert banner.startswith("The last attempt failed, 20") and "oops" in banner
    assert re.search(r"This map is the published one, from 20\d\d-\d\d-\d\d \d\d:\d\d UTC", banner)
    page.check()


def test_search_finds_an_id_and_a_kept_value(nights, visit):
    project, frame = nights
    page = visit(project.outputs / "flowers" / "map.html", project.outputs)
    page.page.fill("#search", "F0007")
    page.page.press("#search", "Enter")
    assert page.page.evaluate("reducerMap.matches()") == ["F0007"]
    tooltip = page.page.locator("#tooltip")
    assert tooltip.is_visible() and "flower: F0007" in tooltip.inner_text()
    assert "name: <b>flower</b> 7" in tooltip.inner_text() and "garden: north" in tooltip.inner_text()
    page.page.fill("#search", "<b>flower</b> 1")  # 1, 10-19, 100-149: listed, the first shown
    page.page.press("#search", "Enter")
    found = page.page.evaluate("reducerMap.matches()")
    assert found[0] == "F0001" and len(found) == 1 + 10 + 50
    assert page.page.locator("#matches li button").count() == 20
    assert page.page.locator("#search-status").inner_text() == "61 matches"
    page.page.locator("#matches li button").nth(3).click()
    assert "flower: " + found[3] in tooltip.inner_text()
    page.check()


def test_colour_by_switches_between_label_and_kept_columns(nights, visit):
    project, frame = nights
    page = visit(project.outputs / "flowers" / "map.html", project.outputs)
    assert page.page.evaluate("reducerMap.colouredBy()") == "species"
    options = page.page.locator("#colour-by option").all_inner_texts()
    assert options == ["species", "name", "garden", "petal_width"]
    setosa = page.page.evaluate("reducerMap.colourOf('F0000')")
    page.page.select_option("#colour-by", label="garden")
    assert page.page.evaluate("reducerMap.colouredBy()") == "garden"
    assert page.page.locator("#legend .name").all_inner_texts() == ["north", "south"]
    assert page.page.evaluate("reducerMap.colourOf('F0000')") != page.page.evaluate("reducerMap.colourOf('F0001')")
    page.page.get_by_role("button", name=re.compile("south")).click()  # the header counts what is shown
    assert page.page.locator("#shown-count").inner_text() == f"{(frame['garden'] == 'north').sum():,}"
    page.page.select_option("#colour-by", label="petal_width")  # 22 numbers: a colour bar
    assert page.page.locator(".ramp").count() == 1 and page.page.locator("#legend button").count() == 0
    assert page.page.locator("#shown-count").inner_text() == "150"
    page.page.select_option("#colour-by", label="species")
    assert page.page.evaluate("reducerMap.colourOf('F0000')") == setosa
    page.check()


def test_box_selection_downloads_the_selected_rows_as_csv(nights, visit):
    project, frame = nights
    page = visit(project.outputs / "flowers" / "map.html", project.outputs)
    scale = page.page.evaluate("reducerMap.scale()")
    assert scale[0] == pytest.approx(scale[1], rel=1e-9)  # equal axis scales
    box = page.page.locator("#map").bounding_box()
    page.page.click("#select-mode")
    page.page.mouse.move(box["x"] + 60, box["y"] + 12)
    page.page.mouse.down()
    page.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] - 42, steps=5)
    page.page.mouse.up()
    selected = page.page.evaluate("reducerMap.selected()")
    assert 0 < len(selected) < 150
    assert page.page.locator("#selected-count").inner_text() == str(len(selected))
    with page.page.expect_download() as download:
        page.page.click("#download")
    rows = list(csv.reader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert rows[0] == ["flower", "species", "name", "garden", "petal_width", "component_1", "component_2"]
    assert [row[0] for row in rows[1:]] == selected
    kept = frame.set_index("flower")
    assert all(row[2] == kept.loc[row[0], "name"] for row in rows[1:])
    page.check()


def test_the_index_fits_a_1280_pixel_window(nights, browser):  # noqa: F811
    project, _ = nights
    page = Visit(browser, project.outputs / "index.html", project.outputs)
    page.page.set_viewport_size({"width": 1280, "height": 900})
    assert page.page.evaluate("document.documentElement.scrollWidth") <= 1280
    text = page.page.locator("#job-flowers").inner_text()
    assert "failed" in text
    page.check()
    page.page.close()


def test_a_lasso_selects_the_points_inside_its_outline(nights, visit):
    """Drawn around one point far from the others (a triangle about it), the lasso selects that
    point alone; the download link offers it."""
    project, _ = nights
    row = isolated_point(pd.read_csv(project.outputs / "flowers" / "embedding.csv", **EXACT))
    page = visit(project.outputs / "flowers" / "map.html", project.outputs)
    at = page.page.evaluate("id => reducerMap.locate(id)", row["id"])
    page.page.click("#lasso-mode")
    assert page.page.get_attribute("#lasso-mode", "aria-pressed") == "true"
    assert page.page.get_attribute("#select-mode", "aria-pressed") == "false"
    page.page.mouse.move(at["x"] - 4, at["y"] - 4)
    page.page.mouse.down()
    for x, y in ((at["x"] + 4, at["y"] - 4), (at["x"] + 4, at["y"] + 4), (at["x"] - 4, at["y"] + 4)):
        page.page.mouse.move(x, y, steps=2)
    page.page.mouse.up()
    assert page.page.evaluate("reducerMap.selected()") == [row["id"]]
    assert page.page.locator("#selected-count").inner_text() == "1"
    assert page.page.get_attribute("#download", "href").startswith("blob:")
    page.check()
