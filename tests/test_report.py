"""The report (reducer/report.py): outputs/index.html and each job's map.html, looked at in a
real browser.

A real `reducer run` of a small project (a good job, a job whose data is bad, a job file that
does not parse) writes the pages; Debian's Chromium, driven headless by Playwright, opens them
from file:// with no network, and every browser test fails on a console error or on any
request that leaves the outputs folder. Hand-made outputs folders cover what one night cannot
show: 60,000 rows, stale files, hostile ids and labels, 3-D maps, continuous labels.

Chromium is Debian's package (`apt-get install chromium`, which .ci/run does); these tests fail,
never skip, when it is missing. REDUCER_CHROMIUM names another binary.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, STARTING_ENVIRONMENT, Project
from reducer import report
from reducer.published import sample_rows

CHROMIUM = os.environ.get("REDUCER_CHROMIUM", "/usr/bin/chromium")
# As .library's notes say for this machine: no sandbox as root, no GPU, and none of Chromium's
# own calls home (its update and network services), which would be refused and logged.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]
EXACT = dict(dtype={"id": str, "label": str}, keep_default_na=False)


# ---------------------------------------------------------------- a real night


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """One real run: iris (published), bad_data (fails reading its CSV: a status, no files) and
    broken (a job file that does not parse: it never reaches the outputs folder)."""
    project = Project(tmp_path_factory.mktemp("report") / "project")
    project.iris_job("iris", epochs=20, objective="reconstruction")  # the report does not depend on it
    (project.root / "Data" / "bad.csv").write_text("a,b,label\n1,2,x\n3,oops,y\n", encoding="utf-8")
    project.job("bad_data", '[dataset]\nname = "csv"\npath = "../Data/bad.csv"\nlabel = "label"\n')
    project.job("broken", "[dataset\n")
    result = project.run("run", "jobs/iris.toml", "jobs/bad_data.toml", "jobs/broken.toml")
    return project, result


def test_a_run_ends_by_writing_the_report(night):
    project, result = night
    assert result.returncode == 1, result.stderr
    index = (project.outputs / "index.html").read_text(encoding="utf-8")
    for name, state in (("iris", "ok"), ("bad_data", "failed"), ("broken", "failed")):
        assert f'id="job-{name}"' in index and f'<span class="badge {state}">{state}</span>' in index
    assert "expected a number, got &#39;oops&#39;" in index  # the reason, escaped (by Jinja2's autoescape)
    assert "Nothing has been published yet." in index
    assert 'src="iris/plot.png"' in index and 'href="iris/map.html"' in index
    assert 'href="iris/..data/model.keras"' in index
    assert (project.outputs / "iris" / "map.html").is_file()
    assert not (project.outputs / "bad_data" / "map.html").exists()
    # The map page was written with the published files, in their version folder (issue 20).
    assert re.search(r"report: .*index\.html \(3 job\(s\), 0 map page\(s\) rewritten\)", result.stderr)
    assert os.readlink(project.outputs / "iris" / "map.html") == "..data/map.html"
    assert oct((project.outputs / "index.html").stat().st_mode & 0o777) == "0o644"
    assert not [p for p in project.outputs.rglob("*") if ".tmp-" in p.name]


def test_the_map_page_holds_the_published_rows(night):
    project, _ = night
    data = page_data(project.outputs / "iris" / "map.html")
    embedding = pd.read_csv(project.outputs / "iris" / "embedding.csv", **EXACT)
    assert data["ids"] == embedding["id"].tolist() and data["rows"] == data["drawn"] == 150
    assert data["labelName"] == "species" and data["groups"]["names"] == ["setosa", "versicolor", "virginica"]
    assert np.allclose(data["components"][0], embedding["component_1"], atol=1e-4)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", (project.outputs / "iris" / "map.html").read_text())


def test_report_rebuilds_without_training_or_tensorflow(night, tmp_path):
    project, _ = night
    blocker = tmp_path / "no_tensorflow"
    (blocker / "tensorflow").mkdir(parents=True)
    (blocker / "tensorflow" / "__init__.py").write_text("raise ImportError('TensorFlow was imported')\n")
    page = project.outputs / "iris" / "map.html"
    before = page.stat().st_mtime_ns, page.read_bytes()
    result = project.run("report", env={"PYTHONPATH": str(blocker)})
    assert result.returncode == 0, result.stderr
    # 3: the job file that does not parse has its status under its file's stem (issue 20)
    assert result.stdout.strip() == f"wrote {project.outputs / 'index.html'}: 3 job(s), 0 map page(s) rewritten"
    assert (page.stat().st_mtime_ns, page.read_bytes()) == before  # same manifest: the page is kept
    timing = subprocess.run([sys.executable, "-X", "importtime", "-m", "reducer", "report", "--outputs",
                             str(project.outputs)], capture_output=True, text=True, env=STARTING_ENVIRONMENT)
    assert timing.returncode == 0 and "tensorflow" not in timing.stderr and "keras" not in timing.stderr
    missing = project.run("report", "--outputs", "nowhere")
    assert missing.returncode == 2 and f"no outputs folder {project.root / 'nowhere'}" in missing.stderr


def test_the_readmes_quiet_encoder_snippet_prints_nothing(night):
    """README, "Using the encoder from another program": no TensorFlow start-up lines, no progress bar."""
    project, _ = night
    text = (REPO / "README.md").read_text(encoding="utf-8")
    snippet, = [block for block in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "verbose=0" in block]
    environment = {key: value for key, value in STARTING_ENVIRONMENT.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-c", snippet + "\nprint(coordinates.shape)"], cwd=project.root,
                          capture_output=True, text=True, env=environment, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "(150, 2)\n" and done.stderr == ""


# ---------------------------------------------------------------- hand-made outputs folders


def fake_job(root, name, rows=40, components=2, labels="classes", status="ok", nights=(), seed=1, ids=None):
    """A job folder as reducer publishes it (plain files instead of links): embedding.csv,
    manifest.json, status.json, and history/ records for `nights` [(stamp, status)]."""
    folder = root / name
    (folder / "history").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"id": ids if ids is not None else [f"r{k}" for k in range(rows)]})
    if labels == "classes":
        frame["label"] = np.array(["alpha", "beta", "gamma"])[np.arange(rows) % 3]
    elif labels == "continuous":
        frame["label"] = [f"{v:.3f}" for v in rng.normal(size=rows)]
    elif labels is not None:
        frame["label"] = labels
    for k in range(components):
        frame[f"component_{k + 1}"] = rng.normal(size=rows) + 4 * (np.arange(rows) % 3 == k)
    frame.to_csv(folder / "embedding.csv", index=False, lineterminator="\n")
    manifest = {"dataset": {"name": "csv", "rows": rows, "columns": 5,
                            "label_column": None if labels is None else "kind", "id_column": "name"},
                "training": {"final_loss": 0.01},
                "quality": {"trustworthiness_5": 0.95, "trustworthiness_12": 0.94, "knn_accuracy": 0.9,
                            "reconstruction_mse": None, "pca": {"trustworthiness_5": 0.9, "knn_accuracy": 0.8}},
                "drift": {"median_displacement": 0.02, "shared_rows": rows, "added_rows": 0, "removed_rows": 0,
                          "neighbor_overlap": 0.95},
                "run": {"started_at": "2026-11-01T02:00:00+00:00", "finished_at": "2026-11-01T02:00:09+00:00"},
                "versions": {"reducer": "0.1.0"}}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (folder / "history" / "20261101T020000Z-1-manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    for stamp, state in nights:
        record = {"job": name, "status": state, "reason": f"{state} on {stamp}", "attempted_at": stamp}
        (folder / "history" / f"{stamp.replace('-', '').replace(':', '')[:15]}Z-2-status.json").write_text(
            json.dumps(record), encoding="utf-8")
    last = nights[-1] if nights else ("2026-11-01T02:00:00+00:00", status)
    (folder / "status.json").write_text(json.dumps({
        "job": name, "status": last[1], "reason": None if last[1] == "ok" else f"{last[1]} on {last[0]}",
        "attempted_at": last[0], "published_at": "2026-11-01T02:00:09+00:00"}), encoding="utf-8")
    return folder


def page_data(path):
    text = path.read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" id="map-data">(.*?)</script>', text, re.S)
    return json.loads(found[1])


def test_more_than_50000_rows_draw_the_plots_fixed_seed_sample(tmp_path):
    fake_job(tmp_path, "big", rows=60_000)
    report.build(tmp_path)
    data = page_data(tmp_path / "big" / "map.html")
    assert data["rows"] == 60_000 and data["drawn"] == len(data["ids"]) == 50_000
    assert data["ids"] == [f"r{k}" for k in sample_rows(60_000)]  # the rows plot.png draws
    assert "50,000 of 60,000 rows drawn: a fixed-seed random sample" in (tmp_path / "big" / "map.html").read_text()


def test_stale_files_say_since_when(tmp_path):
    fake_job(tmp_path, "flaky", nights=[("2026-11-02T02:00:00+00:00", "unchanged"),
                                        ("2026-11-03T02:00:00+00:00", "failed"),
                                        ("2026-11-04T02:00:00+00:00", "rejected")])
    report.build(tmp_path)
    text = re.sub(r"<[^>]+>", "", (tmp_path / "index.html").read_text())
    assert ("The files below are from 2026-11-01 02:00 UTC: stale since 2026-11-03 02:00 UTC, 2 attempts "
            "without a new map.") in text
    assert "rejected on 2026-11-04" in text


def test_the_same_outputs_give_the_same_pages(tmp_path):
    """No clock and no absolute path in the pages: a run that changes nothing changes no byte."""
    fake_job(tmp_path / "one", "steady")
    report.build(tmp_path / "one")
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    report.build(tmp_path / "two")
    for page in ("index.html", "steady/map.html"):
        one, two = ((tmp_path / copy / page).read_text() for copy in ("one", "two"))
        built = r'content="[0-9T:Z-]+"|built [0-9: -]+ UTC'  # index.html's one clock: when it was built (issue 20)
        assert re.sub(built, "", one) == re.sub(built, "", two)


def test_a_map_page_is_rewritten_only_when_its_manifest_changes(tmp_path):
    folder = fake_job(tmp_path, "steady")
    assert report.build(tmp_path).maps_written == 1
    first = (folder / "map.html").stat().st_ino
    assert report.build(tmp_path).maps_written == 0 and (folder / "map.html").stat().st_ino == first
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["training"]["final_loss"] = 0.005
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert report.build(tmp_path).maps_written == 1 and (folder / "map.html").stat().st_ino != first


def test_folders_reducer_did_not_write_are_left_out(tmp_path):
    fake_job(tmp_path, "real")
    (tmp_path / "notes").mkdir()
    (tmp_path / ".cache").mkdir()
    assert report.build(tmp_path).jobs == 1
    assert not (tmp_path / "notes" / "map.html").exists()


# ---------------------------------------------------------------- in the browser


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: `apt-get install chromium` (.ci/run does), or set REDUCER_CHROMIUM")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Playwright gives each launch a fresh, temporary profile (user data folder).
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


class Visit:
    """A page opened from file://, with every request and console message it caused."""

    def __init__(self, browser, path, allowed):
        self.allowed = allowed.resolve().as_uri() + "/"
        self.requests, self.problems = [], []
        self.page = browser.new_page(viewport={"width": 1200, "height": 850})
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("console", lambda message: message.type in ("error", "warning") and self.problems.append(
            f"console {message.type}: {message.text}"))
        self.page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))
        self.page.on("dialog", lambda dialog: (self.problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_load_state("load")

    def check(self):
        """No console error or warning, and no request outside the outputs folder."""
        outside = [url for url in self.requests if not url.startswith(self.allowed)]
        assert not self.problems, self.problems
        assert not outside, f"requests outside {self.allowed}: {outside}"

    def screenshot(self, path):
        self.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000
        return path


@pytest.fixture
def visit(browser):
    opened = []

    def open_page(path, allowed):
        opened.append(Visit(browser, path, allowed))
        return opened[-1]

    yield open_page
    for page in opened:
        page.page.close()


def test_the_index_loads_from_a_file_with_nothing_from_outside(night, visit, tmp_path):
    project, _ = night
    page = visit(project.outputs / "index.html", project.outputs)
    assert page.page.locator("#job-iris .badge").inner_text() == "ok"
    assert page.page.locator("#job-bad_data .badge").inner_text() == "failed"
    width = page.page.evaluate("document.querySelector('#job-iris img').naturalWidth")
    assert width == 800  # plot.png, read through its link into ..data
    assert page.page.locator("#job-iris svg").count() == 3  # history charts; no drift on a first night
    assert re.fullmatch(r"2026-\d\d-\d\d \d\d:\d\d UTC \((just now|\d+ minutes? ago)\)",
                        page.page.locator("#job-iris td", has=page.page.locator("time")).inner_text())
    page.screenshot(tmp_path / "index.png")
    page.check()
    assert any(url.endswith("/iris/plot.png") for url in page.requests)


def isolated_point(embedding):
    """The id of the point farthest from any other: hovering it cannot hit a neighbour."""
    xy = embedding[["component_1", "component_2"]].to_numpy()
    distance = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(distance, np.inf)
    return embedding.iloc[int(distance.min(axis=1).argmax())]


def hover(page, row_id):
    at = page.page.evaluate("id => reducerMap.locate(id)", row_id)
    page.page.mouse.move(at["x"], at["y"])
    tooltip = page.page.locator("#tooltip")
    return tooltip.inner_text() if tooltip.is_visible() else ""


def test_hovering_a_point_shows_its_id_and_label(night, visit, tmp_path):
    project, _ = night
    row = isolated_point(pd.read_csv(project.outputs / "iris" / "embedding.csv", **EXACT))
    page = visit(project.outputs / "iris" / "map.html", project.outputs)
    assert page.page.evaluate("reducerMap.points") == 150
    text = hover(page, row["id"])
    assert f"row: {row['id']}" in text and f"species: {row['label']}" in text
    page.screenshot(tmp_path / "map.png")
    page.check()
    assert page.requests == [(project.outputs / "iris" / "map.html").resolve().as_uri()]


def test_clicking_a_legend_entry_hides_and_shows_its_class(night, visit):
    project, _ = night
    embedding = pd.read_csv(project.outputs / "iris" / "embedding.csv", **EXACT)
    page = visit(project.outputs / "iris" / "map.html", project.outputs)
    setosa = page.page.get_by_role("button", name=re.compile("setosa"))
    assert page.page.evaluate("reducerMap.drawn()") == 150
    setosa.click()
    assert setosa.get_attribute("aria-pressed") == "false"
    assert page.page.evaluate("reducerMap.hidden()") == ["setosa"]
    page.page.wait_for_function("reducerMap.drawn() === 100")
    row = isolated_point(embedding[embedding["label"] == "setosa"])
    assert "species: setosa" not in hover(page, row["id"])  # a hidden point has no tooltip
    setosa.click()
    page.page.wait_for_function("reducerMap.drawn() === 150")
    assert page.page.evaluate("reducerMap.hidden()") == []
    page.check()


def test_drag_pans_and_the_wheel_zooms(night, visit):
    project, _ = night
    row = isolated_point(pd.read_csv(project.outputs / "iris" / "embedding.csv", **EXACT))
    page = visit(project.outputs / "iris" / "map.html", project.outputs)
    locate = "id => reducerMap.locate(id)"
    start = page.page.evaluate(locate, row["id"])
    page.page.mouse.move(500, 400)
    page.page.mouse.down()
    page.page.mouse.move(560, 430, steps=4)
    page.page.mouse.up()
    page.page.wait_for_timeout(100)
    moved = page.page.evaluate(locate, row["id"])
    assert moved["x"] == pytest.approx(start["x"] + 60, abs=1) and moved["y"] == pytest.approx(start["y"] + 30, abs=1)
    page.page.mouse.move(moved["x"], moved["y"])
    page.page.mouse.wheel(0, -300)  # zoom in around the point: it stays under the pointer
    page.page.wait_for_timeout(100)
    assert page.page.evaluate(locate, row["id"]) == pytest.approx(moved, abs=1)
    page.page.get_by_role("button", name="reset").click()
    assert page.page.evaluate(locate, row["id"]) == pytest.approx(start, abs=1)
    page.check()


def test_50000_points_hostile_text_3d_and_continuous_labels_in_the_browser(tmp_path, visit):
    hostile = ["</script><script>alert(1)</script>", "<b>bold</b>", "\"quoted\" & 'single'", "$\\alpha$", "—ünï"]
    fake_job(tmp_path, "big", rows=60_000)
    fake_job(tmp_path, "hostile", rows=5, labels=hostile, ids=hostile[::-1], components=3)
    fake_job(tmp_path, "price", rows=300, labels="continuous")
    report.build(tmp_path)
    index = visit(tmp_path / "index.html", tmp_path)
    assert index.page.locator("section.job").count() == 3
    index.check()

    big = visit(tmp_path / "big" / "map.html", tmp_path)
    assert big.page.evaluate("reducerMap.points") == 50_000 and big.page.evaluate("reducerMap.drawn()") == 50_000
    assert "50,000 of 60,000 rows drawn" in big.page.locator("header").inner_text()
    big.check()

    odd = visit(tmp_path / "hostile" / "map.html", tmp_path)
    assert odd.page.locator("#axes option").count() == 3  # 3-D: choose two components
    for row_id, label in zip(hostile[::-1], hostile):
        assert f"name: {row_id}\nkind: {label}" in hover(odd, row_id)
    assert odd.page.locator("#legend .name").all_inner_texts() == sorted(hostile)
    odd.page.select_option("#axes", "1,2")
    assert "component 3" in hover(odd, hostile[0])
    odd.check()

    price = visit(tmp_path / "price" / "map.html", tmp_path)
    assert price.page.locator(".ramp").count() == 1 and price.page.locator("#legend button").count() == 0
    price.check()


def test_a_label_that_holds_values_shows_its_knn_r2_wherever_accuracy_would_be(tmp_path, visit):
    """The second new-user trial: a job whose label holds values (kNN R^2 measured, no kNN
    accuracy) said `kNN R^2 0.929` in the summary, while the index's overview showed '–', its
    card had no R^2 row and a kNN chart with 'no data yet', and plot.png's subtitle no R^2. A
    real run; the index looked at in the browser; R^2 is labelled as such, never as accuracy."""
    from reducer import plot, read_manifest

    project = Project(tmp_path / "project")
    project.copy_data("iris.csv")
    project.job("lengths", """
        [dataset]
        name = "csv"
        path = "../Data/iris.csv"
        label = "petal_length"
        label_type = "value"
        [model]
        objective = "reconstruction"
        [training]
        epochs = 3
        batch_size = 16
        """)
    result = project.run("run", "jobs/lengths.toml")
    assert result.returncode == 0, result.stderr
    quality = read_manifest(project.outputs / "lengths" / "manifest.json").quality
    assert quality.knn_accuracy is None and quality.knn_r2 is not None
    r2, pca = f"{quality.knn_r2:.3f}", f"{quality.pca['knn_r2']:.3f}"
    assert f"kNN R^2 {r2}" in result.stdout

    page = visit(project.outputs / "index.html", project.outputs)
    overview = page.page.locator("table.overview")
    assert "kNN accuracy or R^2 (PCA)" in overview.locator("th").all_inner_texts()
    assert overview.locator("tr", has_text="lengths").locator("td").nth(6).inner_text() == f"R^2 {r2} ({pca})"
    card = page.page.locator("#job-lengths")
    row = card.locator("tr", has_text="kNN R^2").locator("td").all_inner_texts()
    assert row[1:] == [r2, pca] and "kNN R^2" in row[0]
    assert "kNN accuracy" not in card.inner_text()  # nothing says accuracy of a value
    captions = card.locator("figure.chart figcaption").all_inner_texts()
    assert f"kNN R^2: {r2}" in captions and not any(c.startswith("kNN accuracy") for c in captions)
    assert card.locator("figure.chart", has_text="kNN R^2").locator("svg").count() == 1
    page.check()

    words = plot.caption(150, 150, None, quality)  # plot.png's subtitle lines
    assert any("kNN R^2" in line and f"{quality.knn_r2:.2f}" in line for line in words), words
    history = project.run("history", "lengths")
    assert history.returncode == 0 and f"kNN R^2 {r2}" in history.stdout, history.stdout + history.stderr
