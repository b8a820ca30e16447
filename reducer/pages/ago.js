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
