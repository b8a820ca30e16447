"""The style sheets and the one script of the report's pages, inlined into every page.

The interactive map is plain JavaScript on a canvas (about 240 lines, no library): the page
needs pan, zoom, a tooltip and a clickable legend for at most 50,000 points, which Bokeh
would bring as roughly a megabyte of inlined library per page and a runtime dependency,
Plotly as over 3 MB. Here a page is its data plus ~15 kB, works from a file with no network,
and its legend is made of real buttons (keyboard, screen readers, tests). `window.reducerMap`
lets scripts and the browser tests find a point on the screen and see what is hidden.

Kept in a module rather than as .js files so that a wheel carries them with the code.
"""

PAGE_STYLE = """
:root { --ink: #1d1d1f; --muted: #5f6368; --line: #d9dce0; --ok: #1e7b34; --unchanged: #35618f;
        --failed: #b3261e; --rejected: #9a5b00; --paper: #ffffff; --panel: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       background: var(--paper); }
header, main, footer { max-width: 1200px; margin: 0 auto; padding: 12px 20px; }
h1 { font-size: 22px; margin: 8px 0 4px; }
h2 { font-size: 18px; margin: 0 0 6px; display: flex; gap: 10px; align-items: center; flex-wrap: wrap; }
a { color: #0b57d0; }
.muted { color: var(--muted); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 13px; font-weight: 600;
         color: #fff; background: var(--muted); }
.badge.ok { background: var(--ok); } .badge.unchanged { background: var(--unchanged); }
.badge.failed, .badge.unreadable { background: var(--failed); } .badge.rejected { background: var(--rejected); }
table { border-collapse: collapse; }
th, td { text-align: left; padding: 3px 10px 3px 0; vertical-align: top; }
th { font-weight: 600; }
table.overview { width: 100%; margin: 8px 0 18px; font-size: 14px; }
table.overview th, table.overview td { border-bottom: 1px solid var(--line); padding: 5px 10px 5px 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
section.job { border-top: 2px solid var(--line); padding: 16px 0 10px; }
.notice { background: #fff4e5; border-left: 4px solid var(--rejected); padding: 6px 10px; margin: 6px 0; }
.notice.failed { background: #fdecea; border-left-color: var(--failed); }
.warning { background: #fff4e5; border-left: 4px solid var(--rejected); padding: 6px 10px; margin: 6px 0; }
.columns { display: flex; gap: 24px; flex-wrap: wrap; align-items: flex-start; }
.columns img { width: 480px; max-width: 100%; height: auto; border: 1px solid var(--line); }
.facts { flex: 1; min-width: 320px; }
.facts table { font-size: 14px; margin-bottom: 10px; }
.charts { display: flex; gap: 14px; flex-wrap: wrap; margin: 6px 0 10px; }
figure.chart { margin: 0; font-size: 12px; }
figure.chart figcaption { color: var(--muted); }
.links a { margin-right: 12px; white-space: nowrap; }
"""

# The index says "3 hours ago" beside each time as the reader sees it, not as it was when written.
AGO_SCRIPT = r"""
(function () {
  "use strict";
  var now = Date.now(), units = [["day", 86400], ["hour", 3600], ["minute", 60]];
  document.querySelectorAll("time[data-ago]").forEach(function (time) {
    var seconds = Math.max(0, (now - Date.parse(time.getAttribute("datetime"))) / 1000), text = "just now";
    units.some(function (unit) {
      if (seconds < unit[1]) return false;
      var n = Math.floor(seconds / unit[1]);
      text = n + " " + unit[0] + (n === 1 ? "" : "s") + " ago";
      return true;
    });
    var ago = document.createElement("span");
    ago.className = "ago";
    ago.textContent = " (" + text + ")";
    time.after(ago);
  });
})();
"""

MAP_STYLE = """
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f; }
header { padding: 10px 16px 4px; }
header h1 { font-size: 20px; margin: 2px 0; }
header p { margin: 2px 0; color: #5f6368; }
.sample { color: #9a5b00; font-weight: 600; }
.layout { display: flex; gap: 12px; padding: 6px 16px 16px; align-items: stretch; }
#plot { position: relative; flex: 1; min-width: 300px; height: calc(100vh - 130px); min-height: 360px;
        border: 1px solid #d9dce0; }
#map { width: 100%; height: 100%; display: block; cursor: grab; touch-action: none; }
#map.dragging { cursor: grabbing; }
#map:focus { outline: 2px solid #0b57d0; outline-offset: -2px; }
#tooltip { position: absolute; pointer-events: none; background: rgba(29, 29, 31, 0.92); color: #fff;
           padding: 5px 8px; border-radius: 4px; font-size: 13px; white-space: pre; z-index: 2; max-width: 420px;
           overflow: hidden; text-overflow: ellipsis; }
aside { width: 230px; overflow-y: auto; max-height: calc(100vh - 130px); }
aside h2 { font-size: 14px; margin: 4px 0 6px; }
.controls { display: flex; gap: 6px; flex-wrap: wrap; margin-bottom: 10px; }
button { font: inherit; border: 1px solid #c4c7cc; background: #fff; border-radius: 4px; padding: 2px 9px;
         cursor: pointer; }
button:hover { background: #f1f3f4; }
#legend { list-style: none; margin: 0; padding: 0; }
#legend li { margin: 1px 0; }
#legend button { display: flex; align-items: center; gap: 7px; width: 100%; text-align: left;
                 border-color: transparent; }
#legend button[aria-pressed="false"] { opacity: 0.4; text-decoration: line-through; }
.swatch { width: 12px; height: 12px; border-radius: 50%; flex: none; }
.name { flex: 1; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.count { color: #5f6368; font-size: 12px; font-variant-numeric: tabular-nums; }
.ramp { height: 12px; border-radius: 2px; margin: 4px 0 2px; }
.ends { display: flex; justify-content: space-between; color: #5f6368; font-size: 12px; }
"""

MAP_SCRIPT = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("map-data").textContent);
  var canvas = document.getElementById("map");
  var plot = document.getElementById("plot");
  var tooltip = document.getElementById("tooltip");
  var ctx = canvas.getContext("2d");
  var count = data.ids.length;
  var shown = [0, 1];
  var hidden = data.groups.names.map(function () { return false; });
  var members = data.groups.names.map(function () { return []; });
  var margin = { left: 60, right: 14, top: 12, bottom: 42 };
  var view = null, size = { w: 0, h: 0 }, drag = null, lastDrawn = 0;
  data.groups.of.forEach(function (g, i) { members[g].push(i); });

  function bounds() {
    var xs = data.components[shown[0]], ys = data.components[shown[1]];
    var b = { x0: Infinity, x1: -Infinity, y0: Infinity, y1: -Infinity };
    for (var i = 0; i < count; i++) {
      if (xs[i] < b.x0) b.x0 = xs[i]; if (xs[i] > b.x1) b.x1 = xs[i];
      if (ys[i] < b.y0) b.y0 = ys[i]; if (ys[i] > b.y1) b.y1 = ys[i];
    }
    if (!count) b = { x0: -1, x1: 1, y0: -1, y1: 1 };
    var px = (b.x1 - b.x0) * 0.05 || 1, py = (b.y1 - b.y0) * 0.05 || 1;
    return { x0: b.x0 - px, x1: b.x1 + px, y0: b.y0 - py, y1: b.y1 + py };
  }
  function area() { return { w: size.w - margin.left - margin.right, h: size.h - margin.top - margin.bottom }; }
  function sx(x) { return margin.left + (x - view.x0) / (view.x1 - view.x0) * area().w; }
  function sy(y) { return margin.top + (view.y1 - y) / (view.y1 - view.y0) * area().h; }
  function dataX(px) { return view.x0 + (px - margin.left) / area().w * (view.x1 - view.x0); }
  function dataY(py) { return view.y1 - (py - margin.top) / area().h * (view.y1 - view.y0); }

  function ticks(lo, hi, wanted) {
    var raw = (hi - lo) / wanted, base = Math.pow(10, Math.floor(Math.log10(raw))), step = base;
    [1, 2, 5, 10].some(function (m) { step = base * m; return step >= raw; });
    var out = [], digits = Math.min(10, Math.max(0, -Math.floor(Math.log10(step))));
    for (var k = Math.ceil(lo / step); k <= Math.floor(hi / step); k++) {
      out.push([k * step, (k * step).toFixed(digits)]);
    }
    return out;
  }

  function resize() {
    var rect = canvas.getBoundingClientRect(), ratio = window.devicePixelRatio || 1;
    size = { w: Math.max(rect.width, 100), h: Math.max(rect.height, 100) };
    canvas.width = Math.round(size.w * ratio); canvas.height = Math.round(size.h * ratio);
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  }

  function draw() {
    var a = area(), xs = data.components[shown[0]], ys = data.components[shown[1]];
    ctx.clearRect(0, 0, size.w, size.h);
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, size.w, size.h);
    ctx.strokeStyle = "#eceef1"; ctx.lineWidth = 1; ctx.fillStyle = "#5f6368"; ctx.font = "12px system-ui, sans-serif";
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    ticks(view.x0, view.x1, Math.max(2, Math.floor(a.w / 90))).forEach(function (t) {
      var x = Math.round(sx(t[0])) + 0.5;
      ctx.beginPath(); ctx.moveTo(x, margin.top); ctx.lineTo(x, margin.top + a.h); ctx.stroke();
      ctx.fillText(t[1], x, margin.top + a.h + 5);
    });
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    ticks(view.y0, view.y1, Math.max(2, Math.floor(a.h / 60))).forEach(function (t) {
      var y = Math.round(sy(t[0])) + 0.5;
      ctx.beginPath(); ctx.moveTo(margin.left, y); ctx.lineTo(margin.left + a.w, y); ctx.stroke();
      ctx.fillText(t[1], margin.left - 6, y);
    });
    ctx.textAlign = "center"; ctx.textBaseline = "bottom";
    ctx.fillText("component " + (shown[0] + 1), margin.left + a.w / 2, size.h - 2);
    ctx.save(); ctx.translate(12, margin.top + a.h / 2); ctx.rotate(-Math.PI / 2); ctx.textBaseline = "top";
    ctx.fillText("component " + (shown[1] + 1), 0, 0); ctx.restore();
    ctx.strokeStyle = "#9aa0a6"; ctx.strokeRect(margin.left + 0.5, margin.top + 0.5, a.w, a.h);

    ctx.save();
    ctx.beginPath(); ctx.rect(margin.left, margin.top, a.w, a.h); ctx.clip();
    ctx.globalAlpha = data.alpha;
    var r = data.radius, drawn = 0;
    members.forEach(function (list, g) {
      if (hidden[g]) return;
      ctx.fillStyle = data.groups.colours[g];
      ctx.beginPath();
      for (var k = 0; k < list.length; k++) {
        var i = list[k], x = sx(xs[i]), y = sy(ys[i]);
        if (x < margin.left - r || x > margin.left + a.w + r) continue;
        if (y < margin.top - r || y > margin.top + a.h + r) continue;
        ctx.moveTo(x + r, y); ctx.arc(x, y, r, 0, 2 * Math.PI); drawn++;
      }
      ctx.fill();
    });
    ctx.restore();
    lastDrawn = drawn;
  }

  var pending = false;
  function redraw() {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(function () { pending = false; draw(); });
  }

  function nearest(px, py) {
    var xs = data.components[shown[0]], ys = data.components[shown[1]], best = -1, bestD = 100, same = 0, i;
    for (i = 0; i < count; i++) {
      if (hidden[data.groups.of[i]]) continue;
      var dx = sx(xs[i]) - px, dy = sy(ys[i]) - py, d = dx * dx + dy * dy;
      if (d < bestD) { best = i; bestD = d; }
    }
    if (best < 0) return null;
    for (i = 0; i < count; i++) {
      if (i !== best && !hidden[data.groups.of[i]] && xs[i] === xs[best] && ys[i] === ys[best]) same++;
    }
    return { index: best, others: same };
  }

  function show(px, py) {
    var hit = nearest(px, py);
    if (!hit) { tooltip.hidden = true; return; }
    var i = hit.index, lines = [data.idName + ": " + data.ids[i]];
    if (data.labels) lines.push(data.labelName + ": " + data.labels.names[data.labels.codes[i]]);
    Object.keys(data.kept || {}).forEach(function (name) { lines.push(name + ": " + data.kept[name][i]); });
    lines.push(shown.map(function (c) { return "component " + (c + 1) + ": " + data.components[c][i]; }).join(", "));
    if (hit.others) lines.push("and " + hit.others + " more point(s) at this spot");
    tooltip.textContent = lines.join("\n");
    tooltip.hidden = false;
    var x = sx(data.components[shown[0]][i]), y = sy(data.components[shown[1]][i]);
    var left = x + 12, top = y + 12;
    if (left + tooltip.offsetWidth > size.w) left = Math.max(0, x - 12 - tooltip.offsetWidth);
    if (top + tooltip.offsetHeight > size.h) top = Math.max(0, y - 12 - tooltip.offsetHeight);
    tooltip.style.left = left + "px"; tooltip.style.top = top + "px";
  }

  function local(event) {
    var rect = canvas.getBoundingClientRect();
    return { x: event.clientX - rect.left, y: event.clientY - rect.top };
  }
  function zoom(factor, px, py) {
    var cx = dataX(px), cy = dataY(py);
    view = { x0: cx - (cx - view.x0) * factor, x1: cx + (view.x1 - cx) * factor,
             y0: cy - (cy - view.y0) * factor, y1: cy + (view.y1 - cy) * factor };
    redraw();
  }
  function pan(dx, dy) {
    var a = area(), kx = (view.x1 - view.x0) / a.w, ky = (view.y1 - view.y0) / a.h;
    view = { x0: view.x0 - dx * kx, x1: view.x1 - dx * kx, y0: view.y0 + dy * ky, y1: view.y1 + dy * ky };
    redraw();
  }
  function centre() { var a = area(); return [margin.left + a.w / 2, margin.top + a.h / 2]; }
  function reset() { view = bounds(); redraw(); }

  canvas.addEventListener("pointerdown", function (event) {
    drag = local(event); canvas.setPointerCapture(event.pointerId); canvas.classList.add("dragging");
    tooltip.hidden = true;
  });
  canvas.addEventListener("pointermove", function (event) {
    var at = local(event);
    if (drag) { pan(at.x - drag.x, at.y - drag.y); drag = at; return; }
    show(at.x, at.y);
  });
  function release(event) {
    if (!drag) return;
    drag = null; canvas.classList.remove("dragging");
    if (canvas.hasPointerCapture(event.pointerId)) canvas.releasePointerCapture(event.pointerId);
  }
  canvas.addEventListener("pointerup", release);
  canvas.addEventListener("pointercancel", release);
  canvas.addEventListener("pointerleave", function () { if (!drag) tooltip.hidden = true; });
  canvas.addEventListener("wheel", function (event) {
    event.preventDefault();
    var at = local(event);
    zoom(Math.exp(Math.max(-100, Math.min(100, event.deltaY)) * 0.002), at.x, at.y);
    tooltip.hidden = true;
  }, { passive: false });
  canvas.addEventListener("dblclick", function (event) { var at = local(event); zoom(0.5, at.x, at.y); });
  canvas.addEventListener("keydown", function (event) {
    var c = centre(), step = 40, keys = {
      "+": function () { zoom(0.8, c[0], c[1]); }, "=": function () { zoom(0.8, c[0], c[1]); },
      "-": function () { zoom(1.25, c[0], c[1]); }, "0": reset,
      ArrowLeft: function () { pan(step, 0); }, ArrowRight: function () { pan(-step, 0); },
      ArrowUp: function () { pan(0, step); }, ArrowDown: function () { pan(0, -step); } };
    if (keys[event.key]) { keys[event.key](); event.preventDefault(); }
  });
  function zoomCentre(factor) { return function () { var c = centre(); zoom(factor, c[0], c[1]); }; }
  document.getElementById("zoom-in").addEventListener("click", zoomCentre(0.8));
  document.getElementById("zoom-out").addEventListener("click", zoomCentre(1.25));
  document.getElementById("reset").addEventListener("click", reset);
  var axes = document.getElementById("axes");
  if (axes) axes.addEventListener("change", function () {
    shown = axes.value.split(",").map(Number); tooltip.hidden = true; reset();
  });

  function legend() {
    var box = document.getElementById("legend");
    if (data.groups.ramp) {
      var ramp = document.createElement("div"), ends = document.createElement("div");
      ramp.className = "ramp";
      ramp.style.background = "linear-gradient(to right, " + data.groups.colours.join(", ") + ")";
      ends.className = "ends";
      data.groups.ramp.forEach(function (text) {
        var end = document.createElement("span"); end.textContent = text; ends.appendChild(end);
      });
      box.appendChild(ramp); box.appendChild(ends);
      return;
    }
    data.groups.names.forEach(function (name, g) {
      var item = document.createElement("li"), button = document.createElement("button");
      var swatch = document.createElement("span"), label = document.createElement("span");
      var n = document.createElement("span");
      button.type = "button"; button.setAttribute("aria-pressed", "true"); button.dataset.group = String(g);
      button.title = "hide or show " + name;
      swatch.className = "swatch"; swatch.style.background = data.groups.colours[g];
      label.className = "name"; label.textContent = name;
      n.className = "count"; n.textContent = String(members[g].length);
      button.appendChild(swatch); button.appendChild(label); button.appendChild(n);
      button.addEventListener("click", function () {
        hidden[g] = !hidden[g];
        button.setAttribute("aria-pressed", hidden[g] ? "false" : "true");
        tooltip.hidden = true; redraw();
      });
      item.appendChild(button); box.appendChild(item);
    });
  }

  window.reducerMap = {
    locate: function (id) {
      var i = data.ids.indexOf(String(id));
      if (i < 0) return null;
      var rect = canvas.getBoundingClientRect();
      return { x: rect.left + sx(data.components[shown[0]][i]), y: rect.top + sy(data.components[shown[1]][i]) };
    },
    hidden: function () { return data.groups.names.filter(function (n, g) { return hidden[g]; }); },
    drawn: function () { return lastDrawn; },
    points: count
  };

  legend();
  resize();
  reset();
  draw();
  window.addEventListener("resize", function () { resize(); redraw(); });
  document.body.dataset.ready = "true";
})();
"""
