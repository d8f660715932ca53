// The overview's chart: requests per day over the last week, stacked by outcome, drawn by the vendored
// Chart.js from the table the server rendered into #days-data. Only configuration here, no drawing code.
"use strict";
(function () {
  const canvas = document.getElementById("days-chart");
  const data = document.getElementById("days-data");
  if (!canvas || !data || typeof Chart === "undefined") return;
  const days = JSON.parse(data.textContent);
  const colours = {allowed: "#3a8f5c", denied: "#c33", would_deny: "#e08a1e", would_require_approval: "#d9b23c",
                   pending_approval: "#8a63b8", rate_limited: "#2f6db5", killed: "#222", error: "#777"};
  const datasets = days.decisions.map(function (d) {
    return {label: d, data: days.rows.map(function (r) { return r[d] || 0; }), backgroundColor: colours[d] || "#999"};
  });
  window.tfDaysChart = new Chart(canvas, {
    type: "bar",
    data: {labels: days.rows.map(function (r) { return r.day; }), datasets: datasets},
    options: {animation: false, responsive: true, maintainAspectRatio: false,
              scales: {x: {stacked: true}, y: {stacked: true, beginAtZero: true, ticks: {precision: 0}}}},
  });
  canvas.dataset.ready = "1";
})();
