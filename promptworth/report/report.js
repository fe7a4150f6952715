// report.html's behaviour without libraries beyond the embedded Plotly: the method filter
// (hide a method's traces in every plot and its table rows) and tables sorted by a header click.
"use strict";

function setMethodVisible(method, visible) {
  document.querySelectorAll(".js-plotly-plot").forEach((plot) => {
    const indices = [];
    plot.data.forEach((trace, i) => {
      if (trace.meta === method) indices.push(i);
    });
    if (indices.length) Plotly.restyle(plot, { visible: visible }, indices);
  });
  document.querySelectorAll("tr[data-method]").forEach((row) => {
    if (row.dataset.method === method) row.hidden = !visible;
  });
}

function sortKey(cell) {
  const text = (cell.dataset.sort ?? cell.textContent).trim();
  const number = parseFloat(text);
  return Number.isNaN(number) ? text.toLowerCase() : number;
}

// Numbers before text; empty cells last whatever the direction.
function compareKeys(a, b, direction) {
  if (a === "" || b === "") return (a === "") - (b === "");
  if (typeof a !== typeof b) return typeof a === "number" ? -1 : 1;
  return (a < b ? -1 : a > b ? 1 : 0) * direction;
}

function sortBy(header) {
  const table = header.closest("table");
  const body = table.tBodies[0];
  const column = header.cellIndex;
  const ascending = header.getAttribute("aria-sort") !== "ascending";
  table.querySelectorAll("thead th").forEach((th) => th.removeAttribute("aria-sort"));
  header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  const rows = Array.from(body.rows);
  rows.sort((a, b) =>
    compareKeys(sortKey(a.cells[column]), sortKey(b.cells[column]), ascending ? 1 : -1),
  );
  rows.forEach((row) => body.appendChild(row));
}

document.querySelectorAll("#method-filter input[data-filter]").forEach((box) => {
  box.addEventListener("change", () => setMethodVisible(box.dataset.filter, box.checked));
});
document.querySelectorAll("table.sortable thead th").forEach((header) => {
  header.addEventListener("click", () => sortBy(header));
});
