// Open Ahrefs console: sorting of table rows and the live crawl progress of a site.
// Every page works without this script; it only adds these two conveniences.
"use strict";

(function () {
  const lang = document.documentElement.lang || "en";
  const numberFormat = new Intl.NumberFormat(lang);
  const rateFormat = new Intl.NumberFormat(lang, { maximumFractionDigits: 1 });
  const timeFormat = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

  // Sorting: each header of a table marked data-sortable becomes a button, except those
  // marked data-nosort. The order
  // applies to the rows of the page on screen; the server's pages stay in their order.
  function sortValue(cell) {
    const raw = cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
    const number = Number(raw);
    return raw !== "" && !Number.isNaN(number) ? number : raw.toLowerCase();
  }

  function compare(a, b) {
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b), lang);
  }

  function makeSortable(table) {
    const headers = Array.from(table.tHead ? table.tHead.rows[0].cells : []);
    headers.forEach(function (header, column) {
      if (header.hasAttribute("data-nosort")) return;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      while (header.firstChild) button.appendChild(header.firstChild);
      header.appendChild(button);
      button.addEventListener("click", function () {
        const ascending = header.getAttribute("aria-sort") !== "ascending";
        headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
        header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        const body = table.tBodies[0];
        const rows = Array.from(body.rows);
        rows.sort(function (left, right) {
          const order = compare(sortValue(left.cells[column]), sortValue(right.cells[column]));
          return ascending ? order : -order;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  }

  // Live progress: poll the site's progress every second while it is crawling, every
  // ten seconds once it is done, and compute pages per second from the fetched counts.
  const CRAWLING_INTERVAL_MS = 1000;
  const DONE_INTERVAL_MS = 10000;
  // The rate is averaged over the samples of the last few seconds, so one slow poll does
  // not make it jump.
  const RATE_WINDOW_MS = 5000;

  function startProgress(section) {
    const url = section.dataset.progressUrl;
    const field = function (name) { return section.querySelector('[data-field="' + name + '"]'); };
    const samples = [];
    let lastSuccess = null;

    function setText(name, text) {
      const element = field(name);
      if (element && element.textContent !== text) element.textContent = text;
    }

    function show(site) {
      const now = Date.now();
      samples.push({ time: now, fetched: site.urls_fetched });
      while (samples.length > 2 && now - samples[0].time > RATE_WINDOW_MS) samples.shift();

      const state = field("state");
      if (state) {
        state.textContent = site.state === "done" ? state.dataset.done : state.dataset.crawling;
        state.className = "state state-" + site.state;
      }
      ["urls_discovered", "urls_fetched", "urls_blocked", "urls_skipped", "links"].forEach(function (name) {
        setText(name, numberFormat.format(site[name]));
      });
      setText("frontier", numberFormat.format(Math.max(0, site.urls_discovered - site.urls_fetched)));

      const first = samples[0];
      const seconds = (now - first.time) / 1000;
      if (site.state === "done") {
        setText("rate", rateFormat.format(0));
      } else if (seconds > 0) {
        setText("rate", rateFormat.format(Math.max(0, site.urls_fetched - first.fetched) / seconds));
      }

      Object.keys(site.responses).forEach(function (key) {
        setText("responses." + key, numberFormat.format(site.responses[key]));
        const bar = section.querySelector('[data-bar="' + key + '"]');
        if (bar) {
          bar.max = Math.max(1, site.urls_fetched);
          bar.value = site.responses[key];
        }
      });

      lastSuccess = new Date(now);
      const updated = field("updated");
      if (updated) updated.textContent = updated.dataset.live.replace("{time}", timeFormat.format(lastSuccess));
    }

    function showStale() {
      const updated = field("updated");
      if (updated && lastSuccess) updated.textContent = updated.dataset.stale.replace("{time}", timeFormat.format(lastSuccess));
    }

    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) throw new Error("progress request failed with status " + response.status);
          return response.json();
        })
        .then(function (site) {
          show(site);
          setTimeout(poll, site.state === "done" ? DONE_INTERVAL_MS : CRAWLING_INTERVAL_MS);
        })
        .catch(function () {
          showStale();
          setTimeout(poll, DONE_INTERVAL_MS);
        });
    }

    poll();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table[data-sortable]").forEach(makeSortable);
    document.querySelectorAll("[data-progress-url]").forEach(startProgress);
  });
})();
