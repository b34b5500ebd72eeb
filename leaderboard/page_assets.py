"""The CSS and JavaScript inlined into `index.html`; the page loads nothing from anywhere else.

Sorting (every `table.sortable`: the main table, the not-ranked table and the overriding
tables): a click on a column header sorts the rows by that column (numbers best-first, text
A-Z), a second click reverses; empty cells stay last either way. Each cell carries its sort key
in `data-sort`. In a table marked `data-grouped` the first column (the setting) stays the first
sort key, ascending, so rows are only ever ranked against rows of their own setting.
Filtering (every `table.filtered`: the main and the not-ranked table): rows whose
`data-setting` / `data-method` differ from the chosen value get the `hidden` attribute; the
count shown is the main table's.
"""

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em;
       color: #1a1a1a; }
h1 { font-size: 1.4em; margin: 0 0 .3em; }
p.lead { max-width: 60em; color: #444; }
.filters { display: flex; gap: 1.2em; align-items: center; margin: 1em 0; flex-wrap: wrap; }
.filters select { font: inherit; padding: .15em .3em; }
#shown { color: #666; }
table { border-collapse: collapse; }
th, td { padding: .3em .6em; border-bottom: 1px solid #e2e2e2; text-align: right;
         white-space: nowrap; }
th:nth-child(-n+3), td:nth-child(-n+3) { text-align: left; }
thead th { position: sticky; top: 0; background: #f4f4f4; border-bottom: 2px solid #bbb; }
th button { font: inherit; font-weight: 600; border: 0; background: none; cursor: pointer;
            padding: 0; color: inherit; }
th[aria-sort="ascending"] button::after { content: " \\25B2"; }
th[aria-sort="descending"] button::after { content: " \\25BC"; }
td small { color: #777; }
tr.reported td { color: #777; font-style: italic; background: #fafafa; }
tr.reported a { color: #6a7a99; }
.badge { display: inline-block; font-style: normal; font-size: .75em; padding: 0 .45em;
         margin-left: .4em; border: 1px solid #b08a2e; border-radius: .7em; color: #8a6a1e;
         background: #fff6dc; }
footer { margin-top: 1.5em; color: #666; font-size: .9em; max-width: 60em; }
h2 { font-size: 1.15em; margin: 1.6em 0 .3em; }
#overriding th:nth-child(3), #overriding td:nth-child(3) { text-align: right; }
#overriding th:nth-last-child(2), #overriding td:nth-last-child(2) { text-align: left; }
#unranked th:last-child, #unranked td:last-child,
#overriding-unranked th:last-child, #overriding-unranked td:last-child { text-align: left;
  white-space: normal; min-width: 20em; }
#overriding-unranked th:nth-child(3), #overriding-unranked td:nth-child(3) { text-align: right; }
#overriding-unranked th:nth-last-child(3), #overriding-unranked td:nth-last-child(3) {
  text-align: left; }
"""

JS = """
(function () {
  "use strict";
  function makeSortable(table) {
    var body = table.tBodies[0];
    var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
    var grouped = table.dataset.grouped === "true";

    function sortBy(index) {
      var th = headers[index];
      var numeric = th.dataset.type === "num";
      var state = th.getAttribute("aria-sort");
      var ascending = state === "none" ? !numeric : state === "descending";
      headers.forEach(function (h) { h.setAttribute("aria-sort", "none"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        if (grouped && index !== 0) {
          var g = a.cells[0].dataset.sort, h = b.cells[0].dataset.sort;
          if (g !== h) { return g < h ? -1 : 1; }
        }
        var x = a.cells[index].dataset.sort, y = b.cells[index].dataset.sort;
        if (x === "" || y === "") { return (x === "") - (y === ""); }
        var order = numeric ? Number(x) - Number(y) : (x < y ? -1 : x > y ? 1 : 0);
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    }

    headers.forEach(function (th, index) {
      th.querySelector("button").addEventListener("click", function () { sortBy(index); });
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), makeSortable);

  var body = document.getElementById("leaderboard").tBodies[0];
  var settingFilter = document.getElementById("filter-setting");
  var methodFilter = document.getElementById("filter-method");
  var shown = document.getElementById("shown");

  function applyFilters() {
    Array.prototype.forEach.call(document.querySelectorAll("table.filtered"), function (table) {
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        row.hidden = !((!settingFilter.value || row.dataset.setting === settingFilter.value) &&
                       (!methodFilter.value || row.dataset.method === methodFilter.value));
      });
    });
    var count = body.querySelectorAll("tr:not([hidden])").length;
    shown.textContent = count + " of " + body.rows.length + " ranked rows shown";
  }

  settingFilter.addEventListener("change", applyFilters);
  methodFilter.addEventListener("change", applyFilters);
  applyFilters();
})();
"""
