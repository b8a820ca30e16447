"""The index tells published figures from a rejected candidate's, marks nights without a map
in its history charts, draws sparklines on an honest axis and shows the run's warnings."""

import json
import re

import pytest

from reducer import report
from test_report import fake_job


def charts_of(index, job):
    section = re.search(rf'<section class="job" id="job-{job}">(.*?)</section>', index, re.S)[1]
    return re.findall(r'<figure class="chart">(.*?)</figure>', section, re.S)


def test_failed_rejected_and_unchanged_nights_are_marked_in_the_charts(tmp_path):
    folder = fake_job(tmp_path, "flaky", nights=[("2026-11-02T02:00:00+00:00", "unchanged"),
                                                 ("2026-11-03T02:00:00+00:00", "failed")])
    rejected = json.loads((folder / "manifest.json").read_text())
    rejected["quality"].update(trustworthiness_5=0.71, knn_accuracy=0.55)
    rejected["run"]["started_at"] = "2026-11-04T02:00:00+00:00"
    rejected["rejected"] = "trustworthiness 0.710 below min_trustworthiness 0.9"
    (folder / "history" / "20261104T020000Z-3-rejected-manifest.json").write_text(json.dumps(rejected))
    status = json.loads((folder / "status.json").read_text())
    status.update(status="rejected", reason=rejected["rejected"], attempted_at="2026-11-04T02:00:00+00:00")
    (folder / "status.json").write_text(json.dumps(status))
    report.build(tmp_path)
    index = (tmp_path / "index.html").read_text()
    trust = charts_of(index, "flaky")[0]
    assert trust.count("<circle") == 2  # the published night and the rejected candidate
    assert 'stroke="#b3261e"' in trust and "(rejected): trustworthiness 0.710" in trust
    assert trust.count('class="failed-night"') == 1 and "2026-11-03 02:00 UTC: no figure (failed)" in trust
    assert trust.count('class="quiet-night"') == 1 and "(unchanged)" in trust
    assert "The last 4 attempts from history/ (1 ok, 1 rejected, 1 failed, 1 unchanged)" in index
    # The overview and the quality table say whose figures are whose.
    assert re.search(r"<td>published</td><td class=\"num\">0.950 \(0.900\)</td>", index)
    assert re.search(r"<td>rejected candidate</td><td class=\"num\">0.710</td><td class=\"num\">55.0%</td>", index)
    assert '<th class="num">published map</th><th class="num">PCA</th><th class="num">rejected candidate</th>' in index


@pytest.mark.parametrize("values, least, bounded, expected", [
    ([0.966, 0.9661], 0.05, True, (0.94105, 0.99105)),  # a flat line, not floor to ceiling
    ([0.99, 0.995], 0.05, True, (0.95, 1.0)),  # widened, but kept within [0, 1]
    ([0.5, 0.9], 0.05, True, (0.5, 0.9)),  # wide enough already
    ([100.0, 100.5], None, False, (95.225, 105.275)),  # a loss: at least 10% of its size
])
def test_sparkline_axes_never_magnify_below_a_set_range(values, least, bounded, expected):
    assert report.axis(values, least, bounded) == pytest.approx(expected)


def test_worse_than_pca_appears_on_the_index_and_the_map_page(tmp_path):
    folder = fake_job(tmp_path, "weak")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["quality"].update(trustworthiness_5=0.85, knn_accuracy=0.7)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    report.build(tmp_path)
    for page in (tmp_path / "index.html", folder / "map.html"):
        text = re.sub(r"<[^>]+>", "", page.read_text())
        assert ("Warning: worse than PCA on trustworthiness (0.850 against 0.900) and kNN accuracy "
                "(70.0% against 80.0%)") in text, page
