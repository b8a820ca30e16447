"""The map page at 50,000 points in Debian's Chromium: page size, load time, and what hovering
costs (issue 24). Hover is throttled to one nearest-point search per animation frame, so a
burst of pointer events costs one search, not one each.

    nice .venv/bin/python benchmarks/map_page.py [--rows 60000] [--chromium /usr/bin/chromium]
    .venv/bin/python benchmarks/map_page.py --tiny     # 500 rows, 3 frames: the smoke test

Builds a hand-made outputs folder (one job, 50,000 drawn rows, a label and two kept columns),
runs reducer.report.build on it, opens map.html headless and prints one line per measure.
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from reducer import report

BURST = """async ([n]) => {
  const canvas = document.getElementById("map"), box = canvas.getBoundingClientRect();
  const frame = () => new Promise(r => requestAnimationFrame(() => r()));
  const out = [];
  for (let k = 0; k < n; k++) {
    await frame();
    const t0 = performance.now();
    for (let e = 0; e < 20; e++) {  // 20 pointer events within one frame
      canvas.dispatchEvent(new PointerEvent("pointermove", {bubbles: true,
        clientX: box.left + 80 + ((k * 37 + e) % (box.width - 120)),
        clientY: box.top + 40 + ((k * 53 + e) % (box.height - 90))}));
    }
    const t1 = performance.now();
    await frame();  // the throttled search runs in this frame's callback
    out.push([t1 - t0, performance.now() - t1]);
  }
  return out;
}"""


def outputs(root: Path, rows: int) -> Path:
    folder = root / "big"
    (folder / "history").mkdir(parents=True)
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=6, size=(10, 2))
    group = rng.integers(0, 10, size=rows)
    xy = centres[group] + rng.normal(size=(rows, 2))
    frame = pd.DataFrame({"id": [f"C{k:06d}" for k in range(rows)], "label": [f"class {g}" for g in group],
                          "region": [f"region {k % 7}" for k in range(rows)],
                          "spend": [f"{v:.2f}" for v in rng.gamma(2.0, 50.0, size=rows)],
                          "component_1": xy[:, 0], "component_2": xy[:, 1]})
    frame.to_csv(folder / "embedding.csv", index=False, lineterminator="\n")
    manifest = {"dataset": {"name": "csv", "rows": rows, "columns": 8, "label_column": "segment",
                            "id_column": "customer"},
                "training": {"final_loss": 0.01}, "run": {"started_at": "2026-11-01T02:00:00+00:00",
                                                          "finished_at": "2026-11-01T02:00:09+00:00"},
                "versions": {"reducer": "0.1.0"}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "status.json").write_text(json.dumps({"job": "big", "status": "ok", "attempted_at":
                                                    "2026-11-01T02:00:00+00:00"}))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--tiny", action="store_true", help="500 rows and 3 frames: does the script still work")
    args = parser.parse_args()
    if args.tiny:
        args.rows, args.frames = 500, 3
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = outputs(root, args.rows)
        t = time.perf_counter()
        report.build(root)
        size = (folder / "map.html").stat().st_size / 1e6
        print(f"report.build: {time.perf_counter() - t:.2f} s; map.html {size:.2f} MB")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium,
                                                 args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1280, "height": 850})
            t = time.perf_counter()
            page.goto((folder / "map.html").as_uri())
            page.wait_for_function("document.body.dataset.ready === 'true'")
            print(f"load to first draw: {time.perf_counter() - t:.2f} s; points drawn "
                  f"{page.evaluate('reducerMap.drawn()'):,}")
            timings = page.evaluate(BURST, [args.frames])
            dispatch = [a for a, _ in timings]
            search = [b for _, b in timings]
            print(f"20 pointer events in one frame: median {statistics.median(dispatch):.2f} ms to dispatch; "
                  f"the frame's one search and tooltip: median {statistics.median(search):.1f} ms, "
                  f"max {max(search):.1f} ms (includes waiting for the next frame, ~16.7 ms at 60 Hz)")
            took = page.evaluate("""() => {
              const box = document.getElementById("search"), t0 = performance.now();
              box.value = "C04";
              box.dispatchEvent(new KeyboardEvent("keydown", {key: "Enter", bubbles: true}));
              return performance.now() - t0;
            }""")
            print(f"search 'C04' over {page.evaluate('reducerMap.points'):,} points: "
                  f"{len(page.evaluate('reducerMap.matches()')):,} matches, listed and drawn in {took:.0f} ms")
            took = page.evaluate("""() => {
              const select = document.getElementById("colour-by"), t0 = performance.now();
              select.value = "2";  // spend: label, region, spend
              select.dispatchEvent(new Event("change", {bubbles: true}));
              return performance.now() - t0;
            }""")
            print(f"colour by {page.evaluate('reducerMap.colouredBy()')!r} (a colour bar), legend redone: "
                  f"{took:.0f} ms (the redraw follows in the next frame)")
            browser.close()


if __name__ == "__main__":
    main()
