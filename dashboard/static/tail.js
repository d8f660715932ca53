// The traffic page's live tail: new rows from /api/traffic/stream (server-sent events) on top of the table.
"use strict";
(function () {
  const table = document.getElementById("traffic");
  const box = document.getElementById("live");
  if (!table || !box) return;
  let source = null;
  const cols = ["ts", "gateway", "decision", "method", "host", "path", "action", "risk", "status", "reason", "policies",
                "approval_id"];
  box.addEventListener("change", function () {
    if (source) { source.close(); source = null; }
    if (!box.checked) return;
    source = new EventSource("/api/traffic/stream" + window.location.search);
    source.onmessage = function (ev) {
      const row = JSON.parse(ev.data);
      const tr = document.createElement("tr");
      tr.className = row.decision + " live";
      for (const c of cols) {
        const td = document.createElement("td");
        const v = row[c];
        td.textContent = v === null || v === undefined ? "" : Array.isArray(v) ? v.join(", ") : String(v);  // text, never HTML
        tr.appendChild(td);
      }
      table.tBodies[0].insertBefore(tr, table.tBodies[0].rows[1] || null);
    };
  });
})();
