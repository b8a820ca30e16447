// The interactive map: plain JavaScript on a canvas, no library (see reducer/report_assets.py).
// Pan, zoom, hover, a legend that hides groups, search, colour by a column, box selection and
// its CSV download. Equal scales on both axes: a unit is as long across as up.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("map-data").textContent);
  var canvas = document.getElementById("map");
  var tooltip = document.getElementById("tooltip");
  var ctx = canvas.getContext("2d");
  var count = data.ids.length;
  var shown = [0, 1];
  var margin = { left: 60, right: 14, top: 12, bottom: 42 };
  var view = null, size = { w: 0, h: 0 }, drag = null, lastDrawn = 0;
  var field = 0, groups = null, hidden = [], members = [];
  var matches = [], focus = -1, selected = [], selecting = null, box = null, lasso = null;
  var fields = data.fields.length ? data.fields : [{ name: "points", groups: data.single }];

  function useField(k) {
    field = k; groups = fields[k].groups;
    hidden = groups.names.map(function () { return false; });
    members = groups.names.map(function () { return []; });
    groups.of.forEach(function (g, i) { members[g].push(i); });
  }
  function isShown(i) { return !hidden[groups.of[i]]; }

  function area() { return { w: size.w - margin.left - margin.right, h: size.h - margin.top - margin.bottom }; }
  function equalised(v) {
    // The same data units per pixel on both axes, about the view's centre.
    var a = area(), k = Math.max((v.x1 - v.x0) / a.w, (v.y1 - v.y0) / a.h);
    var cx = (v.x0 + v.x1) / 2, cy = (v.y0 + v.y1) / 2;
    return { x0: cx - k * a.w / 2, x1: cx + k * a.w / 2, y0: cy - k * a.h / 2, y1: cy + k * a.h / 2 };
  }
  function bounds() {
    var xs = data.components[shown[0]], ys = data.components[shown[1]];
    var b = { x0: Infinity, x1: -Infinity, y0: Infinity, y1: -Infinity };
    for (var i = 0; i < count; i++) {
      if (xs[i] < b.x0) b.x0 = xs[i]; if (xs[i] > b.x1) b.x1 = xs[i];
      if (ys[i] < b.y0) b.y0 = ys[i]; if (ys[i] > b.y1) b.y1 = ys[i];
    }
    if (!count) b = { x0: -1, x1: 1, y0: -1, y1: 1 };
    var px = (b.x1 - b.x0) * 0.05 || 1, py = (b.y1 - b.y0) * 0.05 || 1;
    return equalised({ x0: b.x0 - px, x1: b.x1 + px, y0: b.y0 - py, y1: b.y1 + py });
  }
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
    if (view) view = equalised(view);
  }

  function rings(list, colour, r) {
    // One path for every ring: thousands of matches cost two strokes, not two each.
    if (!list.length) return;
    var xs = data.components[shown[0]], ys = data.components[shown[1]];
    ctx.beginPath();
    list.forEach(function (i) {
      if (!isShown(i)) return;
      var x = sx(xs[i]), y = sy(ys[i]);
      ctx.moveTo(x + r, y); ctx.arc(x, y, r, 0, 2 * Math.PI);
    });
    ctx.strokeStyle = "#fff"; ctx.lineWidth = 4; ctx.stroke();
    ctx.strokeStyle = colour; ctx.lineWidth = 2; ctx.stroke();
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
      ctx.fillStyle = groups.colours[g];
      ctx.beginPath();
      for (var k = 0; k < list.length; k++) {
        var i = list[k], x = sx(xs[i]), y = sy(ys[i]);
        if (x < margin.left - r || x > margin.left + a.w + r) continue;
        if (y < margin.top - r || y > margin.top + a.h + r) continue;
        ctx.moveTo(x + r, y); ctx.arc(x, y, r, 0, 2 * Math.PI); drawn++;
      }
      ctx.fill();
    });
    ctx.globalAlpha = 1;
    rings(selected, "#0b57d0", r + 2);
    rings(matches, "#d93025", Math.max(6, r + 4));
    if (lasso && lasso.length > 1) {
      ctx.beginPath(); ctx.moveTo(lasso[0].x, lasso[0].y);
      lasso.forEach(function (p) { ctx.lineTo(p.x, p.y); });
      ctx.closePath(); ctx.fillStyle = "rgba(11, 87, 208, 0.08)"; ctx.fill();
      ctx.strokeStyle = "#0b57d0"; ctx.lineWidth = 1; ctx.stroke();
    }
    if (box) {
      ctx.fillStyle = "rgba(11, 87, 208, 0.08)"; ctx.strokeStyle = "#0b57d0"; ctx.lineWidth = 1;
      ctx.fillRect(box.x0, box.y0, box.x1 - box.x0, box.y1 - box.y0);
      ctx.strokeRect(box.x0 + 0.5, box.y0 + 0.5, box.x1 - box.x0, box.y1 - box.y0);
    }
    ctx.restore();
    lastDrawn = drawn;
  }

  var pending = false;
  function redraw() {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(function () { pending = false; draw(); if (focus >= 0) tip(focus, 0); });
  }

  function nearest(px, py) {
    var xs = data.components[shown[0]], ys = data.components[shown[1]], best = -1, bestD = 100, same = 0, i;
    for (i = 0; i < count; i++) {
      if (!isShown(i)) continue;
      var dx = sx(xs[i]) - px, dy = sy(ys[i]) - py, d = dx * dx + dy * dy;
      if (d < bestD) { best = i; bestD = d; }
    }
    if (best < 0) return null;
    for (i = 0; i < count; i++) {
      if (i !== best && isShown(i) && xs[i] === xs[best] && ys[i] === ys[best]) same++;
    }
    return { index: best, others: same };
  }

  function describe(i) {
    var lines = [data.idName + ": " + data.ids[i]];
    data.fields.forEach(function (f) { lines.push(f.name + ": " + f.values.names[f.values.codes[i]]); });
    lines.push(shown.map(function (c) { return "component " + (c + 1) + ": " + data.components[c][i]; }).join(", "));
    return lines;
  }
  function tip(i, others) {
    var lines = describe(i);
    if (others) lines.push("and " + others + " more point(s) at this spot");
    tooltip.textContent = lines.join("\n");
    tooltip.hidden = false;
    var x = sx(data.components[shown[0]][i]), y = sy(data.components[shown[1]][i]);
    var left = x + 12, top = y + 12;
    if (left + tooltip.offsetWidth > size.w) left = Math.max(0, x - 12 - tooltip.offsetWidth);
    if (top + tooltip.offsetHeight > size.h) top = Math.max(0, y - 12 - tooltip.offsetHeight);
    tooltip.style.left = left + "px"; tooltip.style.top = top + "px";
  }
  function hideTip() { tooltip.hidden = true; focus = -1; }

  // Hover: at most one nearest-point search per frame, whatever the pointer's event rate.
  var hoverAt = null, hoverPending = false;
  function hover(at) {
    hoverAt = at;
    if (hoverPending) return;
    hoverPending = true;
    window.requestAnimationFrame(function () {
      hoverPending = false;
      if (!hoverAt) return;
      var hit = nearest(hoverAt.x, hoverAt.y);
      if (!hit) { if (focus < 0) tooltip.hidden = true; return; }
      focus = -1; tip(hit.index, hit.others);
    });
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
  function centreOn(i) {
    var x = data.components[shown[0]][i], y = data.components[shown[1]][i];
    if (x > view.x0 && x < view.x1 && y > view.y0 && y < view.y1) return;
    var w = view.x1 - view.x0, h = view.y1 - view.y0;
    view = { x0: x - w / 2, x1: x + w / 2, y0: y - h / 2, y1: y + h / 2 };
  }

  // ------------------------------------------------------------- selection and its download
  // "box" or "lasso" (a freehand outline) while a selection tool is on, else null: dragging pans.
  var tools = { box: document.getElementById("select-mode"), lasso: document.getElementById("lasso-mode") };
  function setSelecting(tool) {
    selecting = tool;
    Object.keys(tools).forEach(function (name) { tools[name].setAttribute("aria-pressed", name === tool ? "true" : "false"); });
    canvas.classList.toggle("selecting", tool !== null);
  }
  function csvCell(text) {
    text = String(text);
    return /[",\n\r]/.test(text) || /^[=+\-@\t\r]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }
  function selectionCsv() {
    var head = [data.idName].concat(data.fields.map(function (f) { return f.name; }),
      data.components.map(function (c, k) { return "component_" + (k + 1); }));
    var lines = [head.map(csvCell).join(",")];
    selected.forEach(function (i) {
      var row = [data.ids[i]].concat(data.fields.map(function (f) { return f.values.names[f.values.codes[i]]; }),
        data.components.map(function (c) { return c[i]; }));
      lines.push(row.map(csvCell).join(","));
    });
    return lines.join("\n") + "\n";
  }
  var download = document.getElementById("download"), url = null;
  function showSelection() {
    document.getElementById("selected-count").textContent = selected.length.toLocaleString("en-US");
    document.getElementById("selection").hidden = selected.length === 0;
    if (url) URL.revokeObjectURL(url);
    url = selected.length ? URL.createObjectURL(new Blob([selectionCsv()], { type: "text/csv" })) : null;
    if (url) download.href = url; else download.removeAttribute("href");
  }
  function selectBox(b) {
    var x0 = dataX(Math.min(b.x0, b.x1)), x1 = dataX(Math.max(b.x0, b.x1));
    var y0 = dataY(Math.max(b.y0, b.y1)), y1 = dataY(Math.min(b.y0, b.y1));
    var xs = data.components[shown[0]], ys = data.components[shown[1]];
    selected = [];
    for (var i = 0; i < count; i++) {
      if (isShown(i) && xs[i] >= x0 && xs[i] <= x1 && ys[i] >= y0 && ys[i] <= y1) selected.push(i);
    }
    showSelection(); redraw();
  }
  function selectLasso(path) {
    // Points inside the outline (even-odd rule), judged on the screen where they are drawn.
    var xs = data.components[shown[0]], ys = data.components[shown[1]], n = path.length;
    selected = [];
    for (var i = 0; i < count; i++) {
      if (!isShown(i)) continue;
      var x = sx(xs[i]), y = sy(ys[i]), inside = false;
      for (var a = 0, b = n - 1; a < n; b = a++) {
        if ((path[a].y > y) !== (path[b].y > y) &&
            x < (path[b].x - path[a].x) * (y - path[a].y) / (path[b].y - path[a].y) + path[a].x) inside = !inside;
      }
      if (inside) selected.push(i);
    }
    showSelection(); redraw();
  }
  Object.keys(tools).forEach(function (name) {
    tools[name].addEventListener("click", function () { setSelecting(selecting === name ? null : name); });
  });
  document.getElementById("clear-selection").addEventListener("click", function () {
    selected = []; showSelection(); redraw();
  });

  canvas.addEventListener("pointerdown", function (event) {
    drag = local(event); canvas.setPointerCapture(event.pointerId);
    if (selecting === "box") box = { x0: drag.x, y0: drag.y, x1: drag.x, y1: drag.y };
    else if (selecting === "lasso") lasso = [drag];
    else canvas.classList.add("dragging");
    hideTip();
  });
  canvas.addEventListener("pointermove", function (event) {
    var at = local(event);
    if (drag && box) { box.x1 = at.x; box.y1 = at.y; redraw(); return; }
    if (drag && lasso) { lasso.push(at); redraw(); return; }
    if (drag) { pan(at.x - drag.x, at.y - drag.y); drag = at; return; }
    hover(at);
  });
  function release(event) {
    if (!drag) return;
    drag = null; canvas.classList.remove("dragging");
    if (box) {
      var b = box; box = null;
      if (Math.abs(b.x1 - b.x0) > 2 || Math.abs(b.y1 - b.y0) > 2) selectBox(b); else redraw();
    }
    if (lasso) {
      var path = lasso; lasso = null;
      if (path.length > 2) selectLasso(path); else redraw();
    }
    if (canvas.hasPointerCapture(event.pointerId)) canvas.releasePointerCapture(event.pointerId);
  }
  canvas.addEventListener("pointerup", release);
  canvas.addEventListener("pointercancel", release);
  canvas.addEventListener("pointerleave", function () { hoverAt = null; if (!drag && focus < 0) tooltip.hidden = true; });
  canvas.addEventListener("wheel", function (event) {
    event.preventDefault();
    var at = local(event);
    zoom(Math.exp(Math.max(-100, Math.min(100, event.deltaY)) * 0.002), at.x, at.y);
    hideTip();
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
    shown = axes.value.split(",").map(Number); hideTip(); reset();
  });

  // ------------------------------------------------------------- search
  var search = document.getElementById("search"), list = document.getElementById("matches");
  var MAX_LISTED = 20;
  var lowered = null;
  function level(text, q) { return text === q ? 2 : text.indexOf(q) >= 0 ? 1 : 0; }
  function find(query) {
    // Exact matches first (of the id or any field), then the rest; each distinct value is compared once.
    var q = query.trim().toLowerCase(), exact = [], partial = [];
    if (!q) return [];
    if (!lowered) lowered = {
      ids: data.ids.map(function (text) { return String(text).toLowerCase(); }),
      fields: data.fields.map(function (f) { return f.values.names.map(function (n) { return String(n).toLowerCase(); }); })
    };
    var levels = lowered.fields.map(function (names) { return names.map(function (n) { return level(n, q); }); });
    for (var i = 0; i < count; i++) {
      var hit = level(lowered.ids[i], q);
      for (var f = 0; f < levels.length && hit < 2; f++) hit = Math.max(hit, levels[f][data.fields[f].values.codes[i]]);
      if (hit === 2) exact.push(i); else if (hit === 1) partial.push(i);
    }
    return exact.concat(partial);
  }
  function choose(i) {
    focus = i; centreOn(i); draw(); tip(i, 0);
  }
  function runSearch() {
    matches = find(search.value);
    list.textContent = "";
    var status = document.getElementById("search-status");
    status.textContent = search.value.trim() ? (matches.length ? matches.length.toLocaleString("en-US") +
      " match" + (matches.length === 1 ? "" : "es") : "no match") : "";
    matches.slice(0, MAX_LISTED).forEach(function (i) {
      var item = document.createElement("li"), button = document.createElement("button");
      button.type = "button";
      button.textContent = [data.ids[i]].concat(data.fields.map(function (f) {
        return f.values.names[f.values.codes[i]];
      })).join(" \u00b7 ");
      button.title = describe(i).join("\n");
      button.addEventListener("click", function () { choose(i); });
      item.appendChild(button); list.appendChild(item);
    });
    if (matches.length > MAX_LISTED) {
      var more = document.createElement("li");
      more.className = "count"; more.textContent = "and " + (matches.length - MAX_LISTED).toLocaleString("en-US") + " more";
      list.appendChild(more);
    }
    if (matches.length) choose(matches[0]); else { hideTip(); redraw(); }
  }
  var searchTimer = null;
  search.addEventListener("input", function () { clearTimeout(searchTimer); searchTimer = setTimeout(runSearch, 150); });
  search.addEventListener("keydown", function (event) {
    if (event.key === "Enter") { clearTimeout(searchTimer); runSearch(); event.preventDefault(); }
  });

  // ------------------------------------------------------------- legend, colour by, counts
  function showCount() {
    var n = 0;
    for (var i = 0; i < count; i++) if (isShown(i)) n++;
    document.getElementById("shown-count").textContent = n.toLocaleString("en-US");
  }
  function legend() {
    var box = document.getElementById("legend");
    box.textContent = "";
    document.getElementById("legend-title").textContent = fields[field].name;
    if (groups.ramp) {
      var ramp = document.createElement("div"), ends = document.createElement("div");
      ramp.className = "ramp";
      ramp.style.background = "linear-gradient(to right, " + groups.colours.join(", ") + ")";
      ends.className = "ends";
      groups.ramp.forEach(function (text) {
        var end = document.createElement("span"); end.textContent = text; ends.appendChild(end);
      });
      box.appendChild(ramp); box.appendChild(ends);
      return;
    }
    groups.names.forEach(function (name, g) {
      var item = document.createElement("li"), button = document.createElement("button");
      var swatch = document.createElement("span"), label = document.createElement("span");
      var n = document.createElement("span");
      button.type = "button"; button.setAttribute("aria-pressed", "true"); button.dataset.group = String(g);
      button.title = "hide or show " + name;
      swatch.className = "swatch"; swatch.style.background = groups.colours[g];
      label.className = "name"; label.textContent = name;
      n.className = "count"; n.textContent = String(members[g].length);
      button.appendChild(swatch); button.appendChild(label); button.appendChild(n);
      button.addEventListener("click", function () {
        hidden[g] = !hidden[g];
        button.setAttribute("aria-pressed", hidden[g] ? "false" : "true");
        hideTip(); showCount(); redraw();
      });
      item.appendChild(button); box.appendChild(item);
    });
  }
  var colourBy = document.getElementById("colour-by");
  if (colourBy) colourBy.addEventListener("change", function () {
    useField(Number(colourBy.value)); legend(); showCount(); hideTip(); redraw();
  });

  window.reducerMap = {
    locate: function (id) {
      var i = data.ids.indexOf(String(id));
      if (i < 0) return null;
      var rect = canvas.getBoundingClientRect();
      return { x: rect.left + sx(data.components[shown[0]][i]), y: rect.top + sy(data.components[shown[1]][i]) };
    },
    hidden: function () { return groups.names.filter(function (n, g) { return hidden[g]; }); },
    colouredBy: function () { return fields[field].name; },
    colourOf: function (id) { var i = data.ids.indexOf(String(id)); return i < 0 ? null : groups.colours[groups.of[i]]; },
    matches: function () { return matches.map(function (i) { return data.ids[i]; }); },
    selected: function () { return selected.map(function (i) { return data.ids[i]; }); },
    scale: function () { var a = area(); return [(view.x1 - view.x0) / a.w, (view.y1 - view.y0) / a.h]; },
    drawn: function () { return lastDrawn; },
    points: count
  };

  useField(0);
  legend();
  resize();
  reset();
  showCount();
  draw();
  window.addEventListener("resize", function () { resize(); redraw(); });
  document.body.dataset.ready = "true";
})();
