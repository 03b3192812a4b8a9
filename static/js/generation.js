/* Charts of the generation failure-analysis page.
 *
 * The data comes from <script type="application/json" id="generation-charts"> (Django's json_script);
 * each <canvas data-chart="…"> names which chart it shows (reasons, histogram, question_type,
 * attribute + data-attribute="name"). No inline script: the production CSP forbids it.
 * Also lets the failed-example review card show its error answers (see the end).
 */
(function () {
  "use strict";

  var OK = "#1a7f37", BAD = "#cf222e", ACCENT = "#0969da";
  var FONT = '"PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", "WenQuanYi Zen Hei", sans-serif';

  function readData() {
    var el = document.getElementById("generation-charts");
    if (!el) return null;
    try { return JSON.parse(el.textContent); } catch (e) { return null; }
  }

  function percentAxis() {
    return { beginAtZero: true, max: 100, ticks: { callback: function (v) { return v + "%"; } } };
  }

  function passRateChart(canvas, block, color) {
    return {
      type: "bar",
      data: { labels: block.labels, datasets: [{ label: "通过率", data: block.pass_rate, backgroundColor: color }] },
      options: {
        maintainAspectRatio: false,
        scales: { y: percentAxis() },
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { label: function (ctx) {
            return "通过率 " + ctx.parsed.y + "%（" + block.totals[ctx.dataIndex] + " 条）";
          } } }
        }
      }
    };
  }

  function config(canvas, data) {
    switch (canvas.getAttribute("data-chart")) {
      case "reasons":
        // Horizontal bars: reasons are long sentences.
        canvas.parentElement.style.height = Math.max(160, 34 * data.reasons.labels.length + 40) + "px";
        return {
          type: "bar",
          data: { labels: data.reasons.labels, datasets: [{ label: "次数", data: data.reasons.counts, backgroundColor: BAD }] },
          options: { indexAxis: "y", maintainAspectRatio: false, plugins: { legend: { display: false } },
                     scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } }
        };
      case "histogram":
        return {
          type: "bar",
          data: {
            labels: data.histogram.labels,
            datasets: [
              { label: "通过", data: data.histogram.passed, backgroundColor: OK },
              { label: "未通过", data: data.histogram.failed, backgroundColor: BAD }
            ]
          },
          options: { maintainAspectRatio: false, scales: { x: { stacked: true, title: { display: true, text: "得分" } },
                     y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } }
        };
      case "question_type":
        return passRateChart(canvas, data.question_type, ACCENT);
      case "attribute":
        var block = data.attributes[canvas.getAttribute("data-attribute")];
        return block ? passRateChart(canvas, block, ACCENT) : null;
    }
    return null;
  }

  function init() {
    var data = readData();
    if (!data || typeof window.Chart === "undefined") return;
    window.Chart.defaults.font.family = FONT;
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.rendered) return;
      var cfg = config(canvas, data);
      if (!cfg) return;
      canvas.dataset.rendered = "1";
      new window.Chart(canvas, cfg);
    });
  }

  document.addEventListener("DOMContentLoaded", init);

  // The review card answers a rejected decision (422), a forbidden one (403) or a version conflict
  // (409) with the card and its message: show it instead of htmx's default of swapping nothing.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    var target = event.detail.target;
    if ((status === 422 || status === 403 || status === 409) && target && target.id === "review-card") {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
