// faces-keras labelling page: one key per label value, saved at once by PUT /api/labels/faces/{id}.
// Keys go through one queue, so saves happen in key order and each names the face version it is based on.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const state = { info: null, ids: [], pos: 0, face: null, cursor: 0, history: [], filter: "all" };
  let queue = Promise.resolve();

  function status(text, kind) { const s = $("status"); s.textContent = text; s.className = "status " + (kind || ""); }

  async function api(method, url, body) {
    const opts = { method, headers: {} };
    if (body !== undefined) { opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
    const r = await fetch(url, opts);
    const data = await r.json().catch(() => ({}));
    return { ok: r.ok, status: r.status, data };
  }

  function filterQuery() {
    if (state.filter === "unlabelled") return "?unlabelled=1";
    if (state.filter.startsWith("label:")) {
      const [, name, value] = state.filter.split(":");
      return "?label=" + encodeURIComponent(name) + "&value=" + encodeURIComponent(value);
    }
    return "";
  }

  async function loadIndex() {
    const r = await api("GET", "/api/labels" + filterQuery());
    if (!r.ok) { status(r.data.detail || "cannot load the labels", "error"); return false; }
    state.info = r.data; state.ids = r.data.ids; showProgress(r.data.progress);
    $("file").textContent = r.data.file;
    return true;
  }

  function showProgress(p) {
    $("progress").textContent = p.labelled + " of " + p.total + " labelled" + (p.dropped ? ", " + p.dropped + " dropped" : "");
    $("progress").dataset.labelled = p.labelled;
  }

  function keyFor(label, code, i) {
    // a single-letter code is its own key; longer codes (multi-class) take digits
    return code.length === 1 ? code.toUpperCase() : String(i + 1);
  }

  function buildSide() {
    const sel = $("filter"); sel.innerHTML = "";
    const opts = [["all", "all faces"], ["unlabelled", "unlabelled"]];
    for (const l of state.info.labels) for (const c of l.codes) opts.push(["label:" + l.name + ":" + c, l.name + " = " + c]);
    for (const [v, t] of opts) { const o = document.createElement("option"); o.value = v; o.textContent = t; sel.appendChild(o); }
    sel.value = state.filter;
    const keys = state.info.labels.map((l) => "<div><b>" + l.name + "</b>: " +
      l.codes.map((c, i) => "<kbd>" + keyFor(l, c, i) + "</kbd> " + c + (l.names[i] && l.names[i] !== c ? " (" + l.names[i] + ")" : "")).join(", ") + "</div>");
    keys.push("<div><kbd>Space</kbd> skip a label · <kbd>Backspace</kbd> or <kbd>Ctrl+Z</kbd> undo · " +
              "<kbd>Delete</kbd> drop / undrop · <kbd>&larr;</kbd> <kbd>&rarr;</kbd> previous / next face · " +
              "<kbd>&uarr;</kbd> <kbd>&darr;</kbd> choose the label</div>");
    $("keys").innerHTML = keys.join("");
  }

  async function show(pos) {
    if (!state.ids.length) { status("no faces match this filter", "error"); return; }
    state.pos = Math.max(0, Math.min(pos, state.ids.length - 1));
    const id = state.ids[state.pos];
    const r = await api("GET", "/api/labels/faces/" + encodeURIComponent(id));
    if (!r.ok) { status(r.data.detail, "error"); return; }
    state.face = r.data; state.cursor = firstUnset(r.data);
    history.replaceState(null, "", "#face=" + encodeURIComponent(id));
    $("face").src = "/api/labels/faces/" + encodeURIComponent(id) + "/image.png";
    render();
  }

  function firstUnset(face) {
    const i = state.info.labels.findIndex((l) => !face.values[l.name]);
    return i < 0 ? 0 : i;
  }

  function render() {
    const f = state.face;
    $("face-id").textContent = "face " + f.id; $("face-id").dataset.id = f.id;
    $("origin").textContent = f.origin + " · " + (state.pos + 1) + " / " + state.ids.length;
    $("dropped").hidden = !f.drop;
    $("values").innerHTML = "";
    state.info.labels.forEach((l, i) => {
      const v = f.values[l.name];
      const row = document.createElement("div");
      row.className = "value" + (i === state.cursor ? " current" : "");
      row.dataset.label = l.name;
      row.innerHTML = '<span class="name"></span><span class="code"></span>';
      row.querySelector(".name").textContent = l.name;
      const code = row.querySelector(".code");
      code.textContent = v || "–"; code.classList.toggle("unset", !v);
      row.addEventListener("click", () => { state.cursor = i; render(); });
      $("values").appendChild(row);
    });
  }

  async function put(id, body) {
    const r = await api("PUT", "/api/labels/faces/" + encodeURIComponent(id), body);
    if (r.status === 409) {
      // another tab changed this face since: take its values, tell the user, change nothing
      if (state.face && state.face.id === id) { state.face = r.data.face; render(); }
      status("face " + id + " was changed in another tab; its latest values are shown, press the key again", "error");
      return null;
    }
    if (!r.ok) { status(r.data.detail || ("error " + r.status), "error"); return null; }
    showProgress(r.data.progress);
    status("saved face " + id, "ok");
    return r.data.face;
  }

  async function setValue(labelName, code) {
    const f = state.face;
    const before = { values: Object.assign({}, f.values), drop: f.drop };
    const values = {}; values[labelName] = code;
    const after = await put(f.id, { values, version: f.version });
    if (!after) return false;
    state.history.push({ id: f.id, before, cursor: state.cursor });
    state.face = after; return true;
  }

  async function undo() {
    const last = state.history.pop();
    if (!last) { status("nothing to undo", "error"); return; }
    const cur = await api("GET", "/api/labels/faces/" + encodeURIComponent(last.id));
    if (!cur.ok) { status(cur.data.detail, "error"); return; }
    const values = {};
    for (const l of state.info.labels) values[l.name] = last.before.values[l.name] || "";
    const face = await put(last.id, { values, drop: last.before.drop, version: cur.data.version });
    if (!face) return;
    let pos = state.ids.indexOf(last.id);
    if (pos < 0) { state.ids.splice(state.pos, 0, last.id); pos = state.pos; }
    await show(pos);
    state.cursor = last.cursor; render();
    status("undone: face " + last.id, "ok");
  }

  async function onKey(e) {
    if (!state.face || e.target.tagName === "SELECT") return;
    const f = state.face, labels = state.info.labels;
    if ((e.key === "z" || e.key === "Z") && (e.ctrlKey || e.metaKey)) { await undo(); return; }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "Backspace") { await undo(); return; }
    if (e.key === "ArrowRight" || e.key === "Enter") { await show(state.pos + 1); return; }
    if (e.key === "ArrowLeft") { await show(state.pos - 1); return; }
    if (e.key === "ArrowDown") { state.cursor = Math.min(labels.length - 1, state.cursor + 1); render(); return; }
    if (e.key === "ArrowUp") { state.cursor = Math.max(0, state.cursor - 1); render(); return; }
    if (e.key === "Delete") {
      const before = { values: Object.assign({}, f.values), drop: f.drop };
      const after = await put(f.id, { drop: !f.drop, version: f.version });
      if (after) { state.history.push({ id: f.id, before, cursor: state.cursor }); state.face = after; render(); }
      return;
    }
    if (e.key === " ") { advance(); return; }
    const label = labels[state.cursor];
    const k = e.key.length === 1 ? e.key.toUpperCase() : null;
    if (!k) return;
    const i = label.codes.findIndex((c, j) => keyFor(label, c, j) === k);
    if (i < 0) { status("key " + e.key + " is not a value of " + label.name + " (" + label.codes.join("/") + ")", "error"); return; }
    if (await setValue(label.name, label.codes[i])) await advance();
  }

  async function advance() {
    if (state.cursor < state.info.labels.length - 1) { state.cursor += 1; render(); return; }
    if (state.pos < state.ids.length - 1) await show(state.pos + 1);
    else { render(); status("last face of this list", "ok"); }
  }

  document.addEventListener("keydown", (e) => {
    if ([" ", "Backspace", "ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight"].includes(e.key) && e.target.tagName !== "SELECT") e.preventDefault();
    queue = queue.then(() => onKey(e)).catch((err) => status(String(err), "error"));
  });
  const click = (id, fn) => $(id).addEventListener("click", () => { queue = queue.then(fn); });
  click("prev", () => show(state.pos - 1));
  click("next", () => show(state.pos + 1));
  click("undo", undo);
  click("drop", () => onKey({ key: "Delete", target: document.body }));
  $("filter").addEventListener("change", (e) => {
    state.filter = e.target.value;
    queue = queue.then(async () => { if (await loadIndex()) await show(0); $("filter").blur(); });
  });

  queue = queue.then(async () => {
    if (!(await loadIndex())) return;
    buildSide();
    const m = location.hash.match(/face=([^&]+)/);
    const start = m ? decodeURIComponent(m[1]) : state.info.resume;  // reopening resumes at the first unlabelled face
    const pos = state.ids.indexOf(start);
    await show(pos < 0 ? 0 : pos);
    document.body.dataset.ready = "1";
  });
})();
