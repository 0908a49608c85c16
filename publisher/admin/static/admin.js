/* The console's own script (served from /admin/static/; the CSP allows no inline script).
 *
 * - [data-chart]: draws a history chart with uPlot from the JSON at data-src;
 * - [data-live]: a rolling chart of queue depth and send rate, polled every 2 s;
 * - [data-progress]: keeps an issue's progress bar current from its JSON while it is open;
 * - [data-dialog]: a link to a confirmation page opens the same form as a modal <dialog>.
 * Everything works without it too: the pages are complete HTML, this only adds pictures
 * and live numbers.
 */
(function () {
  "use strict";

  var charts = [];

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function palette() {
    return [css("--c1"), css("--c2"), css("--c3"), css("--c4"), css("--c5"), css("--c6")];
  }

  function axes() {
    var fg = css("--muted"), grid = css("--border");
    return [
      { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } },
      { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } },
    ];
  }

  function size(el) {
    return { width: Math.max(200, el.clientWidth), height: 240 };
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) { throw new Error(url + ": " + r.status); }
        return r.json();
      });
  }

  function drawHistory(el, data) {
    var names = Object.keys(data.series);
    var colours = palette();
    var series = [{}].concat(names.map(function (name, i) {
      return { label: name, stroke: colours[i % colours.length], width: 2, points: { show: true, size: 6 } };
    }));
    var columns = [data.x].concat(names.map(function (n) { return data.series[n]; }));
    var plot = new uPlot(Object.assign({ series: series, axes: axes(), scales: { x: { time: true } } }, size(el)), columns, el);
    charts.push([el, plot]);
    var points = data.x.length;
    el.dataset.drawn = "true";
    el.dataset.points = String(points);
    el.dataset.total = String(names.reduce(function (sum, n) {
      return sum + data.series[n].reduce(function (a, b) { return a + b; }, 0);
    }, 0));
    var note = document.querySelector('[data-note="' + el.dataset.chart + '"]');
    if (note) {
      note.textContent = (points ? "" : "No data yet. ") + (data.note || "");
    }
  }

  function initHistory() {
    var els = document.querySelectorAll("[data-chart]");
    if (!els.length || typeof uPlot === "undefined") { return; }
    var byUrl = {};
    els.forEach(function (el) {
      var url = el.dataset.src;
      (byUrl[url] = byUrl[url] || []).push(el);
    });
    Object.keys(byUrl).forEach(function (url) {
      getJSON(url).then(function (all) {
        byUrl[url].forEach(function (el) { drawHistory(el, all[el.dataset.chart]); });
      }).catch(function (err) {
        byUrl[url].forEach(function (el) { el.textContent = "The chart could not be loaded (" + err.message + ")."; });
      });
    });
  }

  function initLive() {
    var el = document.querySelector("[data-live]");
    if (!el || typeof uPlot === "undefined") { return; }
    var columns = [[], [], []];
    var colours = palette();
    var opts = Object.assign({
      series: [{}, { label: "queued", stroke: colours[0], width: 2, scale: "n" },
               { label: "sent per minute", stroke: colours[1], width: 2, scale: "rate" }],
      axes: axes().concat([{ side: 1, scale: "rate", stroke: css("--muted"), grid: { show: false } }]),
      scales: { x: { time: true } },
    }, size(el));
    opts.axes[1].scale = "n";
    var plot = new uPlot(opts, columns, el);
    charts.push([el, plot]);
    function poll() {
      if (document.hidden) { return; }
      getJSON(el.dataset.live).then(function (d) {
        columns[0].push(d.at); columns[1].push(d.queued); columns[2].push(d.sent_1m);
        if (columns[0].length > 300) { columns.forEach(function (c) { c.shift(); }); }
        plot.setData(columns);
        el.dataset.drawn = "true";
        el.dataset.points = String(columns[0].length);
      }).catch(function () { /* a missed poll: the next one tries again */ });
    }
    poll();
    setInterval(poll, 2000);
  }

  function initProgress() {
    var bar = document.querySelector("[data-progress]");
    if (!bar) { return; }
    var percent = document.getElementById("progress-percent");
    var counts = document.getElementById("progress-counts");
    var status = document.getElementById("issue-status");
    var timer = null;
    function open(s) { return s === "sending" || s === "paused"; }
    function poll() {
      if (document.hidden) { return; }
      getJSON(bar.dataset.progress).then(function (d) {
        bar.value = d.percent;
        bar.textContent = d.percent + "%";
        bar.dataset.status = d.status;
        if (percent) { percent.textContent = String(d.percent); }
        if (status) { status.textContent = d.status; status.className = "status status-" + d.status; }
        if (counts) {
          counts.textContent = Object.keys(d.counts).map(function (k) { return k + " " + d.counts[k]; }).join(", ");
        }
        if (!open(d.status) && timer !== null) { clearInterval(timer); timer = null; }
      }).catch(function () { /* try again at the next tick */ });
    }
    if (open(bar.dataset.status)) { timer = setInterval(poll, 1000); }
    poll();
  }

  function initDialogs() {
    document.querySelectorAll("a[data-dialog]").forEach(function (link) {
      var dialog = document.getElementById(link.dataset.dialog);
      if (!dialog || typeof dialog.showModal !== "function") { return; }
      link.addEventListener("click", function (event) {
        event.preventDefault();
        dialog.showModal();
      });
      dialog.querySelectorAll("[data-close]").forEach(function (button) {
        button.addEventListener("click", function () { dialog.close(); link.focus(); });
      });
    });
  }

  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () {
      charts.forEach(function (pair) { pair[1].setSize(size(pair[0])); });
    }, 150);
  });

  document.addEventListener("DOMContentLoaded", function () {
    initHistory();
    initLive();
    initProgress();
    initDialogs();
  });
})();
