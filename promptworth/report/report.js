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

// The Traces section: rows drawn from the embedded JSON, every text set as textContent (no text
// of a trace reaches the page as markup). A row and each of its steps is a <details>.
function textElement(tag, text, className) {
  const node = document.createElement(tag);
  node.textContent = text;
  if (className) node.className = className;
  return node;
}

function collapsible(title, content) {
  const details = document.createElement("details");
  details.appendChild(textElement("summary", title));
  details.appendChild(content);
  return details;
}

// A kept value: text as it is, a list one collapsible item each, anything else as JSON.
function stepContent(value) {
  if (typeof value === "string") return textElement("pre", value);
  if (Array.isArray(value) && value.length) {
    const list = document.createElement("div");
    value.forEach((item, i) => list.appendChild(collapsible(`${i + 1}`, stepContent(item))));
    return list;
  }
  return textElement("pre", JSON.stringify(value, null, 1));
}

// ✓ or ✗, the answer (its start only when `short`) and a generation row's score.
const SUMMARY_CHARACTERS = 80; // of an answer in a row's summary line; its column has all of it
function scoreText(run, row, short = false) {
  const mark = row.right === null ? "" : row.right ? "✓ " : "✗ ";
  const score = row.score === null || run.metric === "accuracy" ? "" : ` (${row.score.toFixed(3)})`;
  const answer = short && row.answer.length > SUMMARY_CHARACTERS
    ? row.answer.slice(0, SUMMARY_CHARACTERS - 1) + "…" : row.answer;
  return `${mark}${answer}${score}`;
}

function runColumn(run, row) {
  const column = document.createElement("div");
  column.className = "trace-run";
  column.appendChild(textElement("h4", run.title));
  column.appendChild(textElement("p", scoreText(run, row)));
  if (row.steps) {
    Object.entries(row.steps).forEach(([step, value]) =>
      column.appendChild(collapsible(step, stepContent(value))),
    );
  } else {
    column.appendChild(textElement("p", "no steps kept for this row", "none"));
  }
  return column;
}

// Two answers disagree when one is right and the other not, then by how far apart their scores
// are, then when their texts differ.
function disagreement(a, b) {
  return [a.right !== b.right ? 1 : 0, Math.abs((a.score ?? 0) - (b.score ?? 0)),
    a.answer !== b.answer ? 1 : 0];
}

function byDisagreement(first, second) {
  return (i, j) => {
    const x = disagreement(first.rows[i], second.rows[i]);
    const y = disagreement(first.rows[j], second.rows[j]);
    for (let k = 0; k < x.length; k++) if (x[k] !== y[k]) return y[k] - x[k];
    return i - j;
  };
}

function drawTraces(data) {
  const first = data.runs[Number(document.getElementById("trace-run").value)];
  const pick = document.getElementById("trace-other").value;
  let second = pick === "" ? null : data.runs[Number(pick)];
  const note = [];
  if (second && (second === first || second.digest !== first.digest)) {
    note.push(second === first ? "The same run twice: shown once." :
      "These two runs were scored on different test rows: the first is shown alone.");
    second = null;
  }
  const wanted = document.getElementById("trace-filter").value;
  const count = second ? Math.min(first.rows.length, second.rows.length) : first.rows.length;
  let order = [...Array(count).keys()].filter((i) =>
    wanted === "all" || first.rows[i].right === (wanted === "right"));
  if (second) {
    order.sort(byDisagreement(first, second));
    const differ = order.filter((i) => disagreement(first.rows[i], second.rows[i]).some(Boolean));
    note.push(`${differ.length} of these rows differ between the two runs; they come first.`);
  }
  note.unshift(`${order.length} of ${count} rows shown.`);
  document.getElementById("trace-note").textContent = note.join(" ");
  const inputs = data.inputs[first.digest] || [];
  const container = document.getElementById("trace-rows");
  container.replaceChildren(...order.map((i) => {
    const rows = second ? [first.rows[i], second.rows[i]] : [first.rows[i]];
    const summary = rows.map((row, k) => scoreText(k ? second : first, row, true)).join("  |  ");
    const body = document.createElement("div");
    if (inputs[i] !== undefined) body.appendChild(collapsible("input", textElement("pre", inputs[i])));
    const columns = document.createElement("div");
    columns.className = "trace-columns";
    columns.appendChild(runColumn(first, first.rows[i]));
    if (second) columns.appendChild(runColumn(second, second.rows[i]));
    body.appendChild(columns);
    const row = collapsible(`row ${i}: ${summary}`, body);
    row.className = "trace-row";
    row.dataset.row = i;
    return row;
  }));
}

if (document.getElementById("trace-data")) {
  const traceData = JSON.parse(document.getElementById("trace-data").textContent);
  ["trace-run", "trace-other", "trace-filter"].forEach((id) =>
    document.getElementById(id).addEventListener("change", () => drawTraces(traceData)),
  );
  drawTraces(traceData);
}
