// faces-keras try-a-model page: upload photos, see boxes, labels and probabilities; move thresholds.
// Decisions are recomputed here from each face's probabilities and the sliders; thresholds.json
// changes only when "save thresholds" is pressed (the server keeps the old file).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const state = { run: null, labels: [], saved: {}, thresholds: {}, photos: [] };

  function status(text, kind) { const s = $("status"); s.textContent = text; s.className = "status " + (kind || ""); }

  async function loadRuns() {
    const r = await fetch("/api/runs"); const data = await r.json();
    const sel = $("run"); sel.innerHTML = "";
    for (const run of data.runs) { const o = document.createElement("option"); o.value = run.name; o.textContent = run.name; sel.appendChild(o); }
    const wanted = new URLSearchParams(location.search).get("run");
    if (wanted && data.runs.some((r) => r.name === wanted)) sel.value = wanted;
    if (!data.runs.length) status("no runs served: start the app with --runs DIR", "error");
    else await pickRun(sel.value);
  }

  async function pickRun(name) {
    state.run = name; state.photos = []; $("results").innerHTML = ""; $("csv").disabled = true;
    const r = await fetch("/api/runs/" + encodeURIComponent(name) + "/describe");
    const data = await r.json();
    if (!r.ok) { status(data.detail, "error"); return; }
    state.labels = data.labels; state.saved = {}; state.thresholds = {};
    for (const l of data.labels) if (l.kind === "binary") { state.saved[l.name] = l.threshold; state.thresholds[l.name] = l.threshold; }
    buildSliders();
  }

  function buildSliders() {
    const box = $("sliders"); box.innerHTML = "";
    for (const l of state.labels) {
      if (l.kind !== "binary") continue;
      const name = document.createElement("label"); name.textContent = l.name; name.htmlFor = "t-" + l.name;
      const input = document.createElement("input");
      Object.assign(input, { type: "range", min: 0, max: 1, step: 0.01, id: "t-" + l.name, value: state.thresholds[l.name] });
      input.dataset.label = l.name;
      const out = document.createElement("span"); out.id = "v-" + l.name;
      input.addEventListener("input", () => { state.thresholds[l.name] = parseFloat(input.value); update(); });
      box.append(name, input, out);
    }
    update();
  }

  function decide(face, l) {
    if (l.kind === "binary") {
      const p = face.probabilities[l.name], yes = p >= state.thresholds[l.name];
      return { value: l.names[yes ? 1 : 0], yes, p, score: yes ? p : 1 - p };
    }
    if (l.kind === "multiclass") {
      const probs = face.probabilities[l.name]; let best = null;
      for (const [c, p] of Object.entries(probs)) if (best === null || p > probs[best]) best = c;
      return { value: best, yes: true, p: probs[best], score: probs[best] };
    }
    const v = face.probabilities[l.name];
    return { value: v.toFixed(1), yes: true, p: v, score: v };
  }

  function caption(face) {
    return state.labels.map((l) => { const d = decide(face, l);
      return l.kind === "binary" && l.names[1] === "yes" ? (d.yes ? l.name : "") : d.value; }).filter(Boolean).join(" ") || "-";
  }

  function update() {
    let changed = false;
    for (const l of state.labels) if (l.kind === "binary") {
      const t = state.thresholds[l.name], s = state.saved[l.name];
      $("v-" + l.name).textContent = t.toFixed(2) + (Math.abs(t - s) > 1e-9 ? " (saved " + s.toFixed(2) + ")" : "");
      changed = changed || Math.abs(t - s) > 1e-9;
    }
    $("save").disabled = !changed;
    renderResults();
  }

  function renderResults() {
    const root = $("results"); root.innerHTML = "";
    state.photos.forEach((photo, pi) => {
      const wrap = document.createElement("section"); wrap.className = "result"; wrap.dataset.photo = photo.photo;
      const h = document.createElement("h3"); h.textContent = photo.photo + ": " + photo.faces.length + " face(s)"; wrap.appendChild(h);
      const fig = document.createElement("div"); fig.className = "photo";
      const img = document.createElement("img"); img.src = photo.url; img.alt = photo.photo; fig.appendChild(img);
      const scale = Math.min(1, 900 / photo.width);
      img.width = Math.round(photo.width * scale);
      photo.faces.forEach((face, i) => {
        const [x, y, w, hgt] = face.box;
        const b = document.createElement("div"); b.className = "box";
        Object.assign(b.style, { left: x * scale + "px", top: y * scale + "px", width: w * scale + "px", height: hgt * scale + "px" });
        const tag = document.createElement("span"); tag.className = "tag"; tag.textContent = (i + 1) + ": " + caption(face);
        b.appendChild(tag); fig.appendChild(b);
      });
      wrap.appendChild(fig);
      if (photo.faces.length) {
        const t = document.createElement("table"); t.className = "faces";
        t.innerHTML = "<tr><th>face</th>" + state.labels.map((l) => "<th>" + l.name + "</th>").join("") + "</tr>";
        photo.faces.forEach((face, i) => {
          const tr = document.createElement("tr"); tr.innerHTML = "<td>" + (i + 1) + "</td>";
          for (const l of state.labels) {
            const d = decide(face, l), td = document.createElement("td");
            td.className = l.kind === "binary" ? (d.yes ? "yes" : "no") : "";
            td.dataset.label = l.name; td.dataset.value = d.value;
            td.textContent = d.value + " " + (l.kind === "binary" ? "p=" + d.p.toFixed(2) + " t=" + state.thresholds[l.name].toFixed(2) : d.score.toFixed(2));
            tr.appendChild(td);
          }
          t.appendChild(tr);
        });
        wrap.appendChild(t);
      }
      root.appendChild(wrap);
    });
  }

  async function send(files) {
    if (!files.length || !state.run) return;
    const form = new FormData(); form.append("run", state.run);
    for (const f of files) form.append("files", f, f.name || "webcam.jpg");
    status("predicting " + files.length + " photo(s)…");
    const r = await fetch("/api/predict", { method: "POST", body: form });
    const data = await r.json().catch(() => ({ detail: "error " + r.status }));
    if (!r.ok) { status(data.detail, "error"); return; }
    data.photos.forEach((p, i) => { p.url = URL.createObjectURL(files[i]); });
    state.photos = state.photos.concat(data.photos);
    $("csv").disabled = false;
    status(data.photos.reduce((n, p) => n + p.faces.length, 0) + " face(s) in " + data.photos.length + " photo(s)", "ok");
    renderResults();
  }

  function csv() {
    const names = state.labels.map((l) => l.name);
    const rows = [["photo", "face", "x", "y", "w", "h"].concat(...names.map((n) => [n, n + "_score", n + "_threshold"]))];
    for (const p of state.photos) p.faces.forEach((face, i) => {
      const row = [p.photo, i + 1].concat(face.box);
      for (const l of state.labels) { const d = decide(face, l); row.push(d.value, d.score.toFixed(4), l.kind === "binary" ? state.thresholds[l.name] : ""); }
      rows.push(row);
    });
    const text = rows.map((r) => r.map((c) => /[",\n]/.test(String(c)) ? '"' + String(c).replace(/"/g, '""') + '"' : c).join(",")).join("\n") + "\n";
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([text], { type: "text/csv" })); a.download = "predictions.csv"; a.click();
  }

  async function save() {
    const changed = {};
    for (const [n, t] of Object.entries(state.thresholds)) if (Math.abs(t - state.saved[n]) > 1e-9) changed[n] = t;
    const r = await fetch("/api/runs/" + encodeURIComponent(state.run) + "/thresholds",
      { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ thresholds: changed }) });
    const data = await r.json();
    if (!r.ok) { $("save-status").textContent = data.detail; return; }
    Object.assign(state.saved, changed);
    $("save-status").textContent = "saved; the old thresholds are kept in " + data.kept;
    update();
  }

  async function webcam() {
    const video = $("video");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { status("this browser gives no webcam here", "error"); return; }
    if (video.hidden) {
      try { video.srcObject = await navigator.mediaDevices.getUserMedia({ video: true }); video.hidden = false; $("webcam").textContent = "take photo"; }
      catch (err) { status("webcam: " + err.message, "error"); }
      return;
    }
    const c = document.createElement("canvas"); c.width = video.videoWidth; c.height = video.videoHeight;
    c.getContext("2d").drawImage(video, 0, 0);
    c.toBlob((blob) => send([new File([blob], "webcam.jpg", { type: "image/jpeg" })]), "image/jpeg", 0.92);
  }

  $("run").addEventListener("change", (e) => pickRun(e.target.value));
  $("photos").addEventListener("change", (e) => send(Array.from(e.target.files)));
  $("csv").addEventListener("click", csv);
  $("save").addEventListener("click", save);
  $("webcam").addEventListener("click", webcam);
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); send(Array.from(e.dataTransfer.files)); });
  loadRuns().then(() => { document.body.dataset.ready = "1"; });
})();
