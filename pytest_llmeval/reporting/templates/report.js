"use strict";
(function () {
  var data = JSON.parse(document.getElementById("llm-eval-data").textContent);
  var rows = data.cases;
  rows.forEach(function (r) {  // empty fields are left out of the data
    r.flags = r.flags || []; r.reasons = r.reasons || {}; r.outputs = r.outputs || [];
    ["delta", "baseline", "baseline_output", "inputs", "expected", "error", "latency_ms", "cost", "review"].forEach(function (k) {
      if (r[k] === undefined) { r[k] = null; }
    });
  });
  var RANK = {regressed: 0, error: 1, failed: 2, review: 3, improved: 4, same: 5, "new": 6};
  var metrics = [];
  rows.forEach(function (r) { Object.keys(r.scores).forEach(function (m) { if (metrics.indexOf(m) < 0) { metrics.push(m); } }); });
  metrics.sort();
  var multiSuite = data.suites.length > 1;
  var table = document.getElementById("case-table");
  var body = table.tBodies[0];
  var sortKey = "rank", ascending = true;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }
  function num(v) { return v === null || v === undefined ? "" : v.toFixed(3); }
  function signed(v) { return v === null || v === undefined ? "" : (v >= 0 ? "+" : "") + v.toFixed(3); }

  function cell(r, m) {
    var td = el("td");
    if (!(m in r.scores)) { return td; }
    td.appendChild(document.createTextNode(num(r.scores[m])));
    if (r.baseline && m in r.baseline) {
      var d = r.scores[m] - r.baseline[m];
      td.appendChild(el("span", Math.abs(d) < 1e-9 ? "muted" : d < 0 ? "down" : "up", " (" + num(r.baseline[m]) + ")"));
    }
    return td;
  }

  function flagChips(r, td) {
    r.flags.forEach(function (f) {
      var chip = el("span", "flag", f.reason);
      chip.title = f.detail;
      td.appendChild(chip);
    });
    if (r.review) {
      var chip2 = el("span", "flag reviewed", "reviewed: " + r.review.verdict + (r.review.applies ? "" : " (stale)"));
      chip2.title = r.review.note || "";
      td.appendChild(chip2);
    }
  }

  function row(r) {
    var tr = el("tr", "case " + r.status);
    tr.dataset.status = r.status;
    tr.dataset.caseId = r.id;
    tr.appendChild(el("td", "st " + r.status, r.status));
    tr.appendChild(el("td", "id", r.id + (r.repeats > 1 ? " ×" + r.repeats : "")));
    if (multiSuite) { tr.appendChild(el("td", "muted", data.suites[r.suite])); }
    metrics.forEach(function (m) { tr.appendChild(cell(r, m)); });
    tr.appendChild(el("td", r.delta === null ? "muted" : r.delta < -1e-9 ? "down" : r.delta > 1e-9 ? "up" : "muted",
                      r.delta === null ? "n/a" : signed(r.delta)));
    var text = r.error ? "error: " + r.error : (r.outputs[0] || "");
    tr.appendChild(el("td", "excerpt", text.slice(0, 200)));
    var flags = el("td");
    flagChips(r, flags);
    tr.appendChild(flags);
    tr.addEventListener("click", function () { toggle(tr, r); });
    return tr;
  }

  function words(text) { return text.match(/\s+|[^\s]+/g) || []; }
  function diff(before, after) {
    var a = words(before), b = words(after), n = a.length, m = b.length;
    var pre = el("pre", "diff");
    if (n * m > 4000000) { pre.textContent = after; return pre; }
    var lcs = [];
    for (var i = 0; i <= n; i++) { lcs.push(new Uint16Array(m + 1)); }
    for (i = n - 1; i >= 0; i--) {
      for (var j = m - 1; j >= 0; j--) {
        lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
      }
    }
    i = 0; j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && a[i] === b[j]) { pre.appendChild(document.createTextNode(a[i])); i++; j++; }
      else if (i < n && (j >= m || lcs[i + 1][j] >= lcs[i][j + 1])) { pre.appendChild(el("del", null, a[i])); i++; }
      else { pre.appendChild(el("ins", null, b[j])); j++; }
    }
    return pre;
  }

  function block(parent, title, text) {
    if (text === null || text === undefined || text === "") { return; }
    parent.appendChild(el("h4", null, title));
    parent.appendChild(el("pre", null, text));
  }

  function toggle(tr, r) {
    var next = tr.nextSibling;
    if (next && next.classList.contains("detail")) { next.remove(); return; }
    var detail = el("tr", "detail");
    var td = el("td");
    td.colSpan = tr.children.length;
    td.className = "detail";
    td.appendChild(el("div", "muted", "suite " + data.suites[r.suite] + " · content hash " + r.hash + " · " + r.repeats +
      " repeat(s) · " + r.calls + " model call(s)" + (r.retries ? ", " + r.retries + " retried" : "") +
      (r.latency_ms === null ? "" : " · " + r.latency_ms.toFixed(0) + " ms") + (r.cost === null ? "" : " · $" + r.cost.toFixed(6))));
    block(td, "inputs", r.inputs);
    block(td, "expected", r.expected);
    if (r.error) { block(td, "error", r.error); }
    r.outputs.forEach(function (out, k) {
      if (out === null) { return; }
      var title = "output" + (r.outputs.length > 1 ? " (repeat " + k + ")" : "") + (k === 0 && r.same_output ? " (the same as the baseline's)" : "");
      if (r.baseline_output !== null && r.baseline_output !== undefined && k === 0) {
        td.appendChild(el("h4", null, title + ": changes against the baseline's output"));
        td.appendChild(diff(r.baseline_output, out));
      } else { block(td, title, out); }
    });
    Object.keys(r.reasons).sort().forEach(function (m) { block(td, "reason (" + m + ")", r.reasons[m]); });
    r.flags.forEach(function (f) { block(td, "flagged for review: " + f.reason, f.detail); });
    if (r.review) { block(td, "human review: " + r.review.verdict + (r.review.applies ? "" : " (stale: the case changed since)"), r.review.note); }
    detail.appendChild(td);
    tr.parentNode.insertBefore(detail, tr.nextSibling);
  }

  function key(r) {
    if (sortKey === "rank") { return [RANK[r.status], r.delta === null ? 0 : r.delta]; }
    if (sortKey === "id") { return [r.id]; }
    if (sortKey === "suite") { return [r.suite, r.id]; }
    if (sortKey === "delta") { return [r.delta === null ? Infinity : r.delta]; }
    var m = sortKey.slice(2);
    return [m in r.scores ? r.scores[m] : Infinity];
  }
  function compare(a, b) {
    var ka = key(a), kb = key(b);
    for (var i = 0; i < ka.length; i++) {
      if (ka[i] < kb[i]) { return ascending ? -1 : 1; }
      if (ka[i] > kb[i]) { return ascending ? 1 : -1; }
    }
    return 0;
  }

  var statusFilter = document.getElementById("status-filter");
  var suiteFilter = document.getElementById("suite-filter");
  var textFilter = document.getElementById("text-filter");
  function visible(r) {
    var status = statusFilter.value;
    if (status === "review" && !r.flags.length) { return false; }
    if (status === "reviewed" && !r.review) { return false; }
    if (status !== "all" && status !== "review" && status !== "reviewed" && r.status !== status) { return false; }
    if (suiteFilter && suiteFilter.value !== "" && String(r.suite) !== suiteFilter.value) { return false; }
    var q = textFilter.value.trim().toLowerCase();
    if (q) {
      var hay = [r.id, r.inputs || "", r.expected || ""].concat(r.outputs.map(function (o) { return o || ""; })).join("\n").toLowerCase();
      if (hay.indexOf(q) < 0) { return false; }
    }
    return true;
  }
  function render() {
    var shown = rows.filter(visible).sort(compare);
    var fragment = document.createDocumentFragment();
    shown.forEach(function (r) { fragment.appendChild(row(r)); });
    body.replaceChildren(fragment);
    document.getElementById("case-count").textContent = shown.length + " of " + rows.length + " shown";
  }
  table.tHead.addEventListener("click", function (event) {
    var th = event.target.closest("th[data-sort]");
    if (!th) { return; }
    ascending = sortKey === th.dataset.sort ? !ascending : true;
    sortKey = th.dataset.sort;
    Array.prototype.forEach.call(table.tHead.querySelectorAll("th"), function (h) { h.classList.remove("sorted", "asc"); });
    th.classList.add("sorted");
    if (ascending) { th.classList.add("asc"); }
    render();
  });
  [statusFilter, suiteFilter].forEach(function (s) { if (s) { s.addEventListener("change", render); } });
  textFilter.addEventListener("input", render);
  render();

  // Tabs (only when the report has variants or routes): one panel shown at a time; a link
  // to #tab-<name>, or to anything inside a panel (a suite's section), shows that panel.
  var tabs = Array.prototype.slice.call(document.querySelectorAll("[role=tab]"));
  function showTab(name) {
    tabs.forEach(function (tab) {
      var on = tab.dataset.tab === name;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      document.getElementById("tab-" + tab.dataset.tab).hidden = !on;
    });
  }
  function follow() {
    var target = location.hash.length > 1 ? document.getElementById(decodeURIComponent(location.hash.slice(1))) : null;
    var panel = target ? target.closest("[role=tabpanel]") : null;
    showTab(panel ? panel.id.slice(4) : tabs[0].dataset.tab);
    if (target && target !== panel) { target.scrollIntoView(); }
  }
  if (tabs.length) {
    window.addEventListener("hashchange", follow);
    follow();
  }
})();
