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

// The decision map's controls: the marker goes where the inputs say, and the answer shown is the
// nearest precomputed cell's (the recommender ran in Python; nothing is decided here).
function nearest(values, value) {
  const distance = (v) => Math.abs(Math.log(v) - Math.log(value));
  return values.reduce((best, v, i) => (distance(v) < distance(values[best]) ? i : best), 0);
}

function money(value) {
  return "$" + value.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

function choiceText(title, choice) {
  return choice ? `${title} ${choice.method} (${money(choice.total)} total)` : "";
}

function updateDecision() {
  const data = JSON.parse(document.getElementById("decision-data").textContent);
  const answer = document.getElementById("decision-answer");
  const labels = Number(document.getElementById("decision-labels").value);
  const volume = Number(document.getElementById("decision-volume").value);
  if (!(labels > 0 && volume > 0)) {
    answer.textContent = "Give a label budget and a number of queries a day above 0.";
    return;
  }
  const row = nearest(data.volumes, volume);
  const column = nearest(data.labels, labels);
  const cell = data.cells[row][column];
  const plot = document.getElementById("decision-map");
  const marker = plot.data.length - 1;
  Plotly.restyle(plot, { x: [[Math.log10(labels)]], y: [[Math.log10(volume)]] }, [marker]);
  const where =
    `Nearest cell: ${data.labels[column].toLocaleString("en-US")} labels, ` +
    `${data.volumes[row].toLocaleString("en-US")} queries a day: `;
  answer.textContent = cell
    ? where + [choiceText("use", cell.use), choiceText("runner-up", cell.runner_up)]
        .filter(Boolean).join("; ")
    : where + "no method meets every constraint";
}

if (document.getElementById("decision-data")) {
  ["decision-labels", "decision-volume"].forEach((id) =>
    document.getElementById(id).addEventListener("input", updateDecision),
  );
  updateDecision();
}
