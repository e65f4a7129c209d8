// The experiment page: draws the charts from the page's data and, on the live page,
// refreshes them and the page's blocks every few seconds from its data route.
(function () {
  "use strict";

  var CONFIG = { responsive: true, displayModeBar: false };

  function pageData() {
    var node = document.getElementById("page-data");
    return node ? JSON.parse(node.textContent) : null;
  }

  function drawCharts(charts) {
    if (typeof Plotly === "undefined") {
      return;
    }
    document.querySelectorAll("[data-chart]").forEach(function (div) {
      var chart = charts[div.getAttribute("data-chart")];
      if (chart) {
        Plotly.react(div, chart.data, chart.layout, CONFIG);
      }
    });
  }

  function swapBlocks(blocks) {
    Object.keys(blocks).forEach(function (name) {
      var node = document.querySelector('[data-block="' + name + '"]');
      if (node) {
        node.innerHTML = blocks[name];
      }
    });
  }

  function start() {
    var data = pageData();
    if (data) {
      drawCharts(data.charts);
    }
    var url = document.body.getAttribute("data-refresh-url");
    if (!url || !data) {
      return;
    }
    var every = 1000 * Number(document.body.getAttribute("data-refresh-seconds") || 5);
    var headlines = data.report.arms.length;
    var busy = false;

    function refresh() {
      if (busy || document.hidden) {
        return;
      }
      busy = true;
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (response.status === 401 || response.status === 403) {
            window.location.reload(); // the sign-in page
            return null;
          }
          return response.ok ? response.json() : null;
        })
        .then(function (fresh) {
          if (!fresh) {
            return;
          }
          if (fresh.data.report.arms.length !== headlines) {
            window.location.reload(); // a headline was added: new rows
            return;
          }
          swapBlocks(fresh.blocks);
          var status = document.querySelector("[data-block-text=status]");
          if (status) {
            status.textContent = fresh.status_label;
            status.className = "badge " + fresh.data.report.status;
          }
          drawCharts(fresh.data.charts);
        })
        .catch(function () {
          // Offline for a moment: the next tick tries again.
        })
        .then(function () {
          busy = false;
        });
    }

    window.setInterval(refresh, every);
    document.addEventListener("visibilitychange", refresh);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
