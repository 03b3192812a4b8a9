/* Charts of the analysis pages (Chart.js 4, vendored). No inline script: each
   <canvas data-chart="KIND" data-chart-source="ID"> reads its data from the
   {{ value|json_script:"ID" }} element and is drawn here. */
(function () {
  "use strict";
  var COLORS = ["#8c959f", "#0969da", "#1a7f37", "#bf8700", "#cf222e"];

  function readJSON(id) {
    var el = document.getElementById(id);
    if (!el) { return null; }
    try { return JSON.parse(el.textContent); } catch (e) { return null; }
  }

  function accuracyChart(canvas, data) {
    // One horizontal bar group per class: long Chinese class names stay readable on the y axis.
    var box = canvas.parentElement;
    if (box) { box.style.height = Math.max(160, data.labels.length * 30 + 70) + "px"; }
    return new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: data.datasets.map(function (ds, i) {
          return { label: ds.label, data: ds.data, backgroundColor: COLORS[i % COLORS.length], borderWidth: 0 };
        })
      },
      options: {
        indexAxis: "y",
        maintainAspectRatio: false,
        animation: false,
        scales: {
          x: { min: 0, max: 100, ticks: { callback: function (v) { return v + "%"; } } },
          y: { ticks: { autoSkip: false } }
        },
        plugins: {
          legend: { position: "top" },
          tooltip: {
            callbacks: {
              label: function (ctx) {
                var v = ctx.parsed.x;
                return ctx.dataset.label + "：" + (v === null || v === undefined ? "无数据" : v + "%");
              }
            }
          }
        }
      }
    });
  }

  var KINDS = { accuracy: accuracyChart };

  function init(root) {
    if (!window.Chart) { return; }
    var fontFamily = window.getComputedStyle(document.body).fontFamily;
    if (fontFamily) { window.Chart.defaults.font.family = fontFamily; }
    (root || document).querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.chartReady) { return; }
      var draw = KINDS[canvas.dataset.chart];
      var data = readJSON(canvas.dataset.chartSource);
      if (!draw || !data) { return; }
      canvas.dataset.chartReady = "1";
      draw(canvas, data);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSwap", function (evt) { init(evt.target); });
})();
