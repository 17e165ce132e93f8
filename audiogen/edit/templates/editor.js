// audiogen edit: the page. No libraries: a textarea over a highlighted copy of its text.
"use strict";
(() => {
  const TOKEN = document.querySelector('meta[name="audiogen-token"]').content;
  const $ = (id) => document.getElementById(id);
  const src = $("src"), hl = $("hl"), gutter = $("gutter"), pop = $("complete"), player = $("player");
  const state = { path: null, hash: null, saved: "", dirty: false, errors: [], plan: null, seq: 0, shown: 0,
                  schema: null, timer: 0, job: null, chapters: [], items: [], sel: 0 };

  // -- talking to the server (the token goes with every call) -------------------------------------------
  async function api(path, body) {
    const opts = { headers: { "X-Audiogen-Token": TOKEN } };
    if (body !== undefined) {
      opts.method = "POST";
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const r = await fetch(path, opts);
    let data = {};
    try { data = await r.json(); } catch (e) { data = { error: r.statusText }; }
    data._status = r.status;
    return data;
  }
  const q = (o) => Object.entries(o).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join("&");
  function status(text, kind) { const s = $("status"); s.textContent = text; s.className = "status " + (kind || ""); }
  const esc = (s) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
  function fmt(ms) {
    const s = ms / 1000, m = Math.floor(s / 60), r = s - m * 60;
    return `${m}:${r < 10 ? "0" : ""}${r.toFixed(1)}`;
  }

  // -- highlighting -------------------------------------------------------------------------------------
  function splitComment(line) {
    // a # starts a comment at the line start or after a space, outside quotes
    let quote = null;
    for (let i = 0; i < line.length; i++) {
      const c = line[i];
      if (quote) { if (c === quote) quote = null; continue; }
      if ((c === '"' || c === "'") && (i === 0 || /[\s:\-\[,]/.test(line[i - 1]))) { quote = c; continue; }
      if (c === "#" && (i === 0 || /\s/.test(line[i - 1]))) return [line.slice(0, i), line.slice(i)];
    }
    return [line, ""];
  }
  function value(v) {
    if (!v.trim()) return esc(v);
    const lead = v.match(/^\s*/)[0], body = v.slice(lead.length), trail = body.match(/\s*$/)[0];
    const core = body.slice(0, body.length - trail.length);
    let cls = "str";
    if (/^(true|false|yes|no|on|off|null|none|~)$/i.test(core)) cls = "bool";
    else if (/^[-+]?\d+(\.\d+)?\s*(ms|s|m|h|db|dB|%)?$/.test(core) || /^\d+:\d+(\.\d+)?$/.test(core)
             || /^(\d+(\.\d+)?\s*(ms|s|m|h)\s*)+$/i.test(core)) cls = "num";
    else if (/^[>|][-+]?$/.test(core)) cls = "block";
    else if (/^\[.*\]$/.test(core) && !/\[(pause|cue)\b/.test(core)) cls = "flow";
    let html = esc(core);
    if (cls === "str") html = html.replace(/\[(pause|cue)[^\]]*\]/g, (m) => `<span class="mk">${m}</span>`);
    return esc(lead) + `<span class="${cls}">${html}</span>` + esc(trail);
  }
  function highlight(line) {
    const [code, comment] = splitComment(line);
    let html;
    const m = code.match(/^(\s*)(- )?([A-Za-z_][\w-]*)(\s*:)(.*)$/);
    if (m) {
      html = esc(m[1]) + (m[2] ? '<span class="dash">- </span>' : "") + `<span class="key">${esc(m[3])}</span>`
        + `<span class="punct">${esc(m[4])}</span>` + value(m[5]);
    } else {
      const d = code.match(/^(\s*)(- )(.*)$/);
      html = d ? esc(d[1]) + '<span class="dash">- </span>' + value(d[3]) : value(code);
    }
    return html + (comment ? `<span class="cmt">${esc(comment)}</span>` : "");
  }
  function render() {
    const lines = src.value.split("\n");
    const byLine = new Map();
    for (const e of state.errors) {
      const n = e.line || 1;
      if (!byLine.has(n)) byLine.set(n, []);
      byLine.get(n).push(e);
    }
    const out = [], nums = [];
    lines.forEach((line, i) => {
      const n = i + 1, errs = byLine.get(n);
      let html = highlight(line);
      if (errs) {
        const col = Math.max(1, Math.min(errs[0].column || 1, line.length + 1));
        const start = col - 1, rest = line.slice(start), word = rest.match(/^[^\s:]*/)[0] || rest.slice(0, 1) || " ";
        // the squiggle: an absolutely placed underline at the column, under the offending word
        html += `<span class="squiggle" style="left:${start}ch;width:${Math.max(1, word.length)}ch"></span>`;
        html += `<span class="inline-msg">${esc(errs.map((e) => e.message).join(" · "))}</span>`;
      }
      out.push(`<div class="l${errs ? " err" : ""}" data-line="${n}">${html || " "}</div>`);
      nums.push(`<div class="n${errs ? " err" : ""}" data-line="${n}"${errs ? ` title="${esc(errs[0].text)}"` : ""}>${n}</div>`);
    });
    hl.innerHTML = out.join("");
    gutter.innerHTML = nums.join("");
    sync();
  }
  function sync() {
    hl.style.transform = `translate(${-src.scrollLeft}px, ${-src.scrollTop}px)`;
    gutter.style.transform = `translateY(${-src.scrollTop}px)`;
  }

  // -- live checks and the timeline ---------------------------------------------------------------------
  function changed() {
    state.dirty = src.value !== state.saved;
    $("save").classList.toggle("dirty", state.dirty);
    document.title = (state.dirty ? "● " : "") + (state.path || "") + " · audiogen edit";
    render();
    clearTimeout(state.timer);
    state.timer = setTimeout(check, 250);
  }
  async function check() {
    const seq = ++state.seq;
    const r = await api("/api/check", { path: state.path, text: src.value });
    if (seq < state.shown) return; // an older answer arriving late
    state.shown = seq;
    if (r._status !== 200) { status(r.error || "check failed", "bad"); return; }
    state.errors = r.errors || [];
    render();
    problems(r);
    if (r.plan) { state.plan = r; timeline(r); }
    $("editor").classList.toggle("stale", !r.plan);
    if (state.errors.length) status(`${state.errors.length} problem${state.errors.length > 1 ? "s" : ""}`, "bad");
    else status(state.dirty ? "valid · unsaved" : "valid · saved", "good");
  }
  function problems(r) {
    const box = $("problems");
    box.innerHTML = "";
    for (const e of r.errors || []) {
      const b = document.createElement("button");
      b.className = "problem";
      b.innerHTML = `<span class="where">${e.line ? `${e.line}:${e.column || 1}` : "file"}</span> ${esc(e.message)}`
        + (e.field ? ` <span class="field">${esc(e.field)}</span>` : "") + (e.hint ? `<span class="hint">${esc(e.hint)}</span>` : "");
      b.title = e.text;
      b.onclick = () => e.line && goto(e.line, e.column || 1);
      box.appendChild(b);
    }
  }
  function goto(line, col) {
    const lines = src.value.split("\n");
    let pos = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) pos += lines[i].length + 1;
    pos += col - 1;
    src.focus();
    src.setSelectionRange(pos, pos);
    const lh = parseFloat(getComputedStyle(src).lineHeight);
    src.scrollTop = Math.max(0, (line - 4) * lh);
  }

  function timeline(r) {
    const plan = r.plan, total = Math.max(1, plan.length_ms), tl = $("timeline");
    const pct = (ms) => (100 * ms / total).toFixed(3) + "%";
    $("total").textContent = fmt(plan.length_ms);
    $("total").dataset.ms = plan.length_ms;
    const ex = $("exact");
    ex.textContent = plan.estimated ? "speech estimated" : "exact";
    ex.className = "badge " + (plan.estimated ? "est" : "ok");
    const warned = new Map((r.warnings || []).map((w) => [w.chapter, w]));
    const lane = (name, inner) => `<div class="lane lane-${name}"><span class="lname">${name}</span><div class="track">${inner}</div></div>`;
    const chapters = plan.chapters.map((c, i) => {
      const w = warned.get(c.title);
      return `<div class="blk ch ch-${c.kind}${w ? " warn" : ""}" data-chapter="${i}" style="left:${pct(c.start_ms)};width:${pct(c.end_ms - c.start_ms)}"`
        + ` title="${esc(c.title)} · ${fmt(c.end_ms - c.start_ms)}${w ? " · " + esc(w.message) : ""}">`
        + `<span class="t">${esc(c.title)}</span><span class="d">${fmt(c.end_ms - c.start_ms)}</span>${w ? '<span class="wmark">!</span>' : ""}</div>`;
    }).join("");
    const ev = (kind) => plan.events.filter((e) => e.kind === kind).map((e) =>
      `<div class="blk ev ev-${kind} r-${e.role || ""}" style="left:${pct(e.start_ms)};width:${pct(e.end_ms - e.start_ms)}"`
      + ` title="${esc((e.role ? e.role + ": " : "") + (e.text || e.sound || kind))} · ${fmt(e.end_ms - e.start_ms)}"></div>`).join("");
    let bed = "";
    if (r.bed) {
      // the bed's level over time: its volume when nobody speaks, ducked under speech
      const lvl = (db) => Math.max(4, Math.min(100, 100 * (db + 60) / 60));
      const base = r.bed.volume_db, ducked = r.bed.volume_db + r.bed.duck_db;
      let t = 0;
      const segs = [];
      for (const e of plan.events.filter((x) => x.kind === "speech")) {
        if (e.start_ms > t) segs.push([t, e.start_ms, base]);
        segs.push([Math.max(t, e.start_ms), e.end_ms, ducked]);
        t = Math.max(t, e.end_ms);
      }
      if (t < total) segs.push([t, total, base]);
      bed = segs.map(([a, b, db]) => `<div class="blk bed" style="left:${pct(a)};width:${pct(b - a)};height:${lvl(db)}%"`
        + ` title="bed ${esc(r.bed.track)} at ${db.toFixed(0)} dB"></div>`).join("");
    } else bed = '<span class="none">no background</span>';
    const ticks = [];
    const step = [10, 30, 60, 120, 300, 600].map((s) => s * 1000).find((s) => total / s <= 10) || 1200000;
    for (let t = 0; t <= total; t += step) ticks.push(`<span class="tick" style="left:${pct(t)}">${fmt(t).replace(/\.\d$/, "")}</span>`);
    // the sound checks are known once the session is built: marked where they found something, faded when
    // the text has changed since that build
    let checks = '<span class="none">build to run the sound checks</span>';
    const found = state.checks;
    const stale = found && src.value !== found.text;
    if (found && !found.items.length) checks = `<span class="none">sound checks passed${stale ? " (last build)" : ""}</span>`;
    else if (found) checks = found.items.map((c) =>
      `<div class="blk chk${stale ? " stale" : ""}" data-check="${esc(c.check)}" style="left:${pct(Math.min(c.at_ms, total))}"`
      + ` title="${esc(c.time)} · ${esc(c.message)}; ${esc(c.hint)}${stale ? " (from the last build: the text has changed since)" : ""}">!</div>`).join("");
    tl.innerHTML = `<div class="ruler">${ticks.join("")}</div>` + lane("chapters", chapters) + lane("speech", ev("speech"))
      + lane("silence", ev("silence")) + lane("cue", ev("cue")) + lane("bed", bed) + lane("checks", checks);
    tl.querySelectorAll(".ch").forEach((b) => { b.onclick = () => preview(+b.dataset.chapter); });
    $("warnings").innerHTML = (r.warnings || []).map((w) => `<li>⚠ ${esc(w.message)}</li>`).join("")
      + (found ? found.items : []).filter((c) => c.check !== "overrun").map((c) =>
        `<li class="chk-line${stale ? " stale" : ""}"><b class="chk-tag">sound check</b> ${esc(c.chapter ? `step '${c.chapter}' at ${c.time}` : `at ${c.time}`)}: `
        + `${esc(c.message)}; ${esc(c.hint)}</li>`).join("");
    $("steps").innerHTML = plan.chapters.map((c, i) => {
      const w = warned.get(c.title);
      return `<li class="${w ? "warn" : ""}"><button class="play-step" data-chapter="${i}" aria-label="play ${esc(c.title)}">▶</button>`
        + `<span class="st">${esc(c.title)}</span><span class="sd">${fmt(c.start_ms)} · <b>${fmt(c.end_ms - c.start_ms)}</b></span></li>`;
    }).join("");
    $("steps").querySelectorAll(".play-step").forEach((b) => { b.onclick = () => preview(+b.dataset.chapter); });
  }

  // -- hearing it: a job on the server, polled until its audio is ready ---------------------------------
  function progress(job) {
    const p = $("progress");
    p.hidden = !job || job.state !== "running";
    if (!job) return;
    $("progress-fill").style.width = job.total ? `${Math.round(100 * job.done / job.total)}%` : "30%";
    $("progress-text").textContent = job.message + (job.total ? ` (${job.done}/${job.total})` : "");
  }
  async function follow(job, done) {
    state.job = job.id;
    progress(job);
    while (job.state === "running") {
      await new Promise((res) => setTimeout(res, 250));
      if (state.job !== job.id) return;
      job = await api("/api/job?" + q({ id: job.id }));
      progress(job);
    }
    progress(null);
    if (job.state === "failed") {
      status((job.error && job.error[0] && job.error[0].text) || job.message, "bad");
      return;
    }
    done(job.result);
    check();  // new clips in the cache: the timeline's speech lengths are now the real ones
  }
  function play(url) {
    player.src = url;
    player.play().catch(() => {});
  }
  function chapterAtCursor() {
    if (!state.plan) return null;
    // the step whose list item holds the cursor: count `- ` items under `steps:` above it
    const before = src.value.slice(0, src.selectionStart).split("\n");
    let inSteps = false, step = -1, section = null;
    for (const line of before) {
      if (/^\S/.test(line) && !/^#/.test(line)) { section = line.split(":")[0].trim(); inSteps = section === "steps"; }
      else if (inSteps && /^\s*- /.test(line) && line.match(/^\s*/)[0].length <= 2) step++;
    }
    const chs = state.plan.plan.chapters;
    let idx = -1;
    if (section === "intro") idx = chs.findIndex((c) => c.kind === "intro");
    else if (section === "outro") idx = chs.findIndex((c) => c.kind === "outro");
    else if (inSteps && step >= 0) idx = chs.findIndex((c) => c.step === step);
    return idx >= 0 ? idx : chs.length ? 0 : null;
  }
  async function preview(chapter, selection) {
    const body = { path: state.path, text: src.value };
    if (selection !== undefined) body.selection = selection; else body.chapter = chapter;
    const label = selection !== undefined ? "selection" : (state.plan && state.plan.plan.chapters[chapter] || {}).title;
    status(`synthesising ${label || "step"}…`);
    const job = await api("/api/preview", body);
    if (job._status !== 202) { status(job.error || "preview refused", "bad"); return; }
    follow(job, (res) => {
      if (!res.url) { status("nothing to say there", "bad"); return; }
      status(`playing ${label || "step"} (${res.engine}${res.cached === res.texts.length ? ", from cache" : ""})`, "good");
      $("now").textContent = `${label}: ${fmt(res.length_ms)}`;
      $("chapters").innerHTML = "";
      play(res.url);
    });
  }
  async function build() {
    if (state.dirty) status("building the saved file: unsaved edits are not in it", "bad");
    const built = state.saved; // the server builds the file as saved
    const job = await api("/api/build", { path: state.path });
    if (job._status !== 202) { status(job.error || "build refused", "bad"); return; }
    follow(job, (res) => {
      status(`built ${res.title} · ${fmt(res.length_ms)}`, "good");
      state.checks = { items: res.checks || [], text: built };
      if (state.plan) timeline(state.plan);
      $("now").textContent = `${res.title}: ${fmt(res.length_ms)}`;
      state.chapters = res.chapters;
      $("chapters").innerHTML = res.chapters.map((c, i) =>
        `<li><button data-i="${i}" data-start="${c.start_ms}" class="jump"><span class="st">${esc(c.title)}</span><span class="sd">${fmt(c.start_ms)}</span></button></li>`).join("");
      $("chapters").querySelectorAll(".jump").forEach((b) => {
        b.onclick = () => { player.currentTime = state.chapters[+b.dataset.i].start_ms / 1000; player.play().catch(() => {}); };
      });
      play(res.url);
    });
  }
  player.addEventListener("timeupdate", () => {
    const t = player.currentTime * 1000;
    $("chapters").querySelectorAll(".jump").forEach((b, i) => {
      const c = state.chapters[i];
      b.classList.toggle("current", !!c && t >= c.start_ms && t < c.end_ms);
    });
  });

  // -- saving, with a guard against overwriting someone else's change -----------------------------------
  async function save(overwrite) {
    const text = src.value;
    const r = await api("/api/save", { path: state.path, text, hash: state.hash, overwrite: !!overwrite });
    if (r._status === 409 && r.diff !== undefined) {
      $("conflict").hidden = false;
      $("conflict-msg").textContent = r.error;
      $("diff").innerHTML = r.diff.split("\n").map((l) => {
        const c = l.startsWith("+++") || l.startsWith("---") ? "fh" : l[0] === "+" ? "add" : l[0] === "-" ? "del" : l[0] === "@" ? "hunk" : "";
        return `<span class="${c}">${esc(l)}</span>`;
      }).join("\n");
      state.disk = { text: r.disk_text, hash: r.disk_hash };
      status("not saved: the file changed on disk", "bad");
      return;
    }
    if (r._status !== 200) { status(r.error || "save failed", "bad"); return; }
    state.hash = r.hash;
    state.saved = text;
    $("conflict").hidden = true;
    changed();
    status("saved", "good");
  }
  $("save").onclick = () => save(false);
  $("overwrite").onclick = () => save(true);
  $("conflict-close").onclick = () => { $("conflict").hidden = true; };
  $("load-disk").onclick = () => {
    if (!state.disk) return;
    src.value = state.saved = state.disk.text;
    state.hash = state.disk.hash;
    $("conflict").hidden = true;
    changed();
  };

  // -- completion from the routine's JSON schema --------------------------------------------------------
  function deref(s) {
    while (s && s.$ref) s = state.schema.$defs[s.$ref.split("/").pop()];
    return s;
  }
  function objectOf(s) {
    s = deref(s);
    if (!s) return null;
    if (s.properties) return s;
    if (s.type === "array" || s.items) return objectOf(s.items);
    for (const alt of s.anyOf || s.oneOf || []) { const o = objectOf(alt); if (o) return o; }
    return null;
  }
  function keyCol(line) {
    const m = line.match(/^(\s*)(- )?([A-Za-z_][\w-]*)\s*:/);
    return m ? { col: m[1].length + (m[2] ? 2 : 0), key: m[3] } : null;
  }
  function pathAt(lines, row, col) {
    const path = [];
    let target = col;
    for (let i = row - 1; i >= 0 && target > 0; i--) {
      const k = keyCol(lines[i]);
      if (k && k.col < target && !/^\s*#/.test(lines[i])) { path.unshift(k.key); target = k.col; }
    }
    return path;
  }
  function schemaAt(path) {
    let s = state.schema;
    for (const key of path) {
      const o = objectOf(s);
      if (!o || !o.properties[key]) return null;
      s = o.properties[key];
    }
    return s;
  }
  function valuesOf(s) {
    s = deref(s);
    if (!s) return [];
    const out = new Set();
    const walk = (x) => {
      x = deref(x);
      if (!x) return;
      (x.enum || []).forEach((v) => out.add(String(v)));
      if (x.const !== undefined) out.add(String(x.const));
      if (x.type === "boolean") { out.add("true"); out.add("false"); }
      (x.anyOf || x.oneOf || []).forEach(walk);
    };
    walk(s);
    // built-in names listed in a description: "built-in ambience (rain, ocean, drone, pink-noise) or a file"
    const d = (s.description || "").match(/\(([a-z-]+(?:,\s*[a-z-]+)+)\)/);
    if (d) d[1].split(/,\s*/).forEach((v) => out.add(v));
    if (/\bnone\b/.test(s.description || "")) out.add("none");
    return [...out];
  }
  function completions() {
    const pos = src.selectionStart, text = src.value;
    const lineStart = text.lastIndexOf("\n", pos - 1) + 1;
    const before = text.slice(lineStart, pos);
    const lines = text.slice(0, lineStart).split("\n");
    const row = lines.length - 1;
    let m = before.match(/^(\s*)(- )?([A-Za-z_][\w-]*)?$/);
    if (m) {
      const col = m[1].length + (m[2] ? 2 : 0), prefix = m[3] || "";
      const o = objectOf(schemaAt(pathAt(text.split("\n"), row, col)));
      if (!o) return null;
      const items = Object.keys(o.properties).filter((k) => k.startsWith(prefix) && k !== prefix)
        .map((k) => ({ label: k, insert: k + ": ", doc: o.properties[k].description || "" }));
      return items.length ? { from: pos - prefix.length, items } : null;
    }
    m = before.match(/^(\s*)(- )?([A-Za-z_][\w-]*)\s*:\s*([\w.-]*)$/);
    if (m) {
      const col = m[1].length + (m[2] ? 2 : 0);
      const s = schemaAt([...pathAt(text.split("\n"), row, col), m[3]]);
      const prefix = m[4];
      const items = valuesOf(s).filter((v) => v.startsWith(prefix) && v !== prefix).map((v) => ({ label: v, insert: v, doc: "" }));
      return items.length ? { from: pos - prefix.length, items } : null;
    }
    return null;
  }
  function caretXY() {
    const pos = src.selectionStart, lines = src.value.slice(0, pos).split("\n");
    const cs = getComputedStyle(src), lh = parseFloat(cs.lineHeight);
    const probe = document.createElement("span");
    probe.textContent = "0000000000";
    probe.style.font = cs.font;
    probe.style.visibility = "hidden";
    probe.style.position = "absolute";
    document.body.appendChild(probe);
    const cw = probe.getBoundingClientRect().width / 10;
    probe.remove();
    const x = parseFloat(cs.paddingLeft) + lines[lines.length - 1].length * cw - src.scrollLeft + src.offsetLeft;
    const y = parseFloat(cs.paddingTop) + lines.length * lh - src.scrollTop;
    return { x, y };
  }
  function openPop(c) {
    if (!c) { closePop(); return; }
    state.items = c.items;
    state.from = c.from;
    state.sel = 0;
    pop.innerHTML = c.items.map((it, i) => `<li role="option" data-i="${i}"${i === 0 ? ' class="on"' : ""}>`
      + `<b>${esc(it.label)}</b>${it.doc ? `<span>${esc(it.doc)}</span>` : ""}</li>`).join("");
    const { x, y } = caretXY();
    pop.style.left = `${Math.max(0, x + gutter.offsetWidth)}px`;
    pop.style.top = `${y + 4}px`;
    pop.hidden = false;
    pop.querySelectorAll("li").forEach((li) => { li.onmousedown = (e) => { e.preventDefault(); accept(+li.dataset.i); }; });
  }
  function closePop() { pop.hidden = true; state.items = []; }
  function accept(i) {
    const it = state.items[i];
    if (!it) return;
    const pos = src.selectionStart;
    closePop();
    insert(it.insert, state.from, pos);
  }
  function move(d) {
    const lis = pop.querySelectorAll("li");
    if (!lis.length) return;
    lis[state.sel].classList.remove("on");
    state.sel = (state.sel + d + lis.length) % lis.length;
    lis[state.sel].classList.add("on");
    lis[state.sel].scrollIntoView({ block: "nearest" });
  }

  src.addEventListener("keydown", (e) => {
    if (!pop.hidden) {
      if (e.key === "ArrowDown") { e.preventDefault(); move(1); return; }
      if (e.key === "ArrowUp") { e.preventDefault(); move(-1); return; }
      if (e.key === "Enter" || e.key === "Tab") { e.preventDefault(); accept(state.sel); return; }
      if (e.key === "Escape") { e.preventDefault(); closePop(); return; }
    }
    if ((e.ctrlKey || e.metaKey) && e.key === "s") { e.preventDefault(); save(false); return; }
    if (e.ctrlKey && e.key === " ") { e.preventDefault(); openPop(completions()); return; }
    if (e.key === "Tab" && !e.shiftKey) { e.preventDefault(); insert("  ", src.selectionStart, src.selectionEnd); }
    if (e.key === "Enter") {  // keep the indentation (and one more level after `key:`)
      e.preventDefault();
      const pos = src.selectionStart, start = src.value.lastIndexOf("\n", pos - 1) + 1, line = src.value.slice(start, pos);
      let ind = line.match(/^\s*/)[0];
      if (/^\s*- /.test(line)) ind += "  ";
      if (/:\s*$/.test(line)) ind += "  ";
      insert("\n" + ind, pos, src.selectionEnd);
    }
  });
  // Edits the page makes go through the browser's own text insertion, so that Ctrl+Z undoes them too.
  function insert(text, from, to) {
    state.quiet = true;
    src.focus();
    src.setSelectionRange(from, to);
    let done = false;
    try { done = document.execCommand("insertText", false, text); } catch (e) { done = false; }
    if (!done) src.setRangeText(text, from, to, "end");
    state.quiet = false;
    changed();
  }
  src.addEventListener("input", (e) => {
    changed();
    if (state.quiet) return;
    if (e.inputType && e.inputType.startsWith("insert") && e.data && /[\w: ]/.test(e.data)) openPop(completions());
    else if (!e.inputType || !e.inputType.startsWith("insert")) closePop();
  });
  src.addEventListener("scroll", sync);
  src.addEventListener("blur", () => setTimeout(closePop, 150));
  const selection = () => src.value.slice(src.selectionStart, src.selectionEnd);
  document.addEventListener("selectionchange", () => { $("play-selection").disabled = !selection().trim(); });
  src.addEventListener("select", () => { $("play-selection").disabled = !selection().trim(); });
  $("play-selection").onclick = () => { const t = selection(); if (t.trim()) preview(null, t); };
  $("play-cursor").onclick = () => { const c = chapterAtCursor(); if (c !== null) preview(c); };
  $("build").onclick = build;
  // a new step after the last one under `steps:`, indented like the others, its title selected to type over
  function addStep() {
    const lines = src.value.split("\n");
    const at = lines.findIndex((l) => /^steps\s*:/.test(l));
    let pos, ind = "  ", lead = "";
    if (at < 0) {
      pos = src.value.length;
      lead = (src.value.endsWith("\n") || !src.value ? "" : "\n") + "steps:\n";
    } else {
      let end = at + 1;
      while (end < lines.length && (/^\s/.test(lines[end]) || !lines[end].trim())) end++;
      while (end > at + 1 && !lines[end - 1].trim()) end--;
      const item = lines.slice(at + 1, end).find((l) => /^\s*- /.test(l));
      if (item) ind = item.match(/^\s*/)[0];
      pos = lines.slice(0, end).join("\n").length;
      lead = "\n";
    }
    const snippet = `${lead}${ind}- title: New step\n${ind}  say: Describe the movement in a sentence or two.\n${ind}  hold: 10s`;
    insert(snippet, pos, pos);
    const t = pos + lead.length + ind.length + "- title: ".length;
    src.setSelectionRange(t, t + "New step".length);
  }
  $("add-step").onclick = addStep;
  window.addEventListener("beforeunload", (e) => { if (state.dirty) { e.preventDefault(); e.returnValue = ""; } });

  // -- files and templates -------------------------------------------------------------------------------
  async function open(path) {
    const r = await api("/api/file?" + q({ path }));
    if (r._status !== 200) { status(r.error || "cannot open", "bad"); return; }
    state.path = r.path;
    state.checks = null; // the sound checks of another file's build do not apply
    state.hash = r.hash;
    src.value = state.saved = r.text;
    $("file").value = r.path;
    changed();
    if (r.new) status("a new file: start from a template, then save", "bad");
  }
  $("file").onchange = () => {
    if (state.dirty && !confirm("Discard unsaved changes?")) { $("file").value = state.path; return; }
    open($("file").value);
  };
  $("template").onchange = async () => {
    const name = $("template").value;
    $("template").value = "";
    if (!name || (src.value.trim() && !confirm(`Replace the editor's text with the ${name} template? (Nothing is saved until you save.)`))) return;
    const title = (src.value.match(/^title:\s*"?([^"\n#]*)"?/m) || [])[1] || "My routine";
    const r = await api("/api/template?" + q({ name, title: title.trim(), file: state.path || "routine.yaml" }));
    if (r._status !== 200) { status(r.error, "bad"); return; }
    src.value = r.text;
    changed();
  };

  (async () => {
    const s = await api("/api/state");
    state.schema = s.schema;
    $("file").innerHTML = s.files.map((f) => `<option>${esc(f)}</option>`).join("");
    if (s.first && !s.files.includes(s.first)) $("file").insertAdjacentHTML("afterbegin", `<option>${esc(s.first)}</option>`);
    $("template").insertAdjacentHTML("beforeend", s.templates.map((t) => `<option value="${t}">${t}</option>`).join(""));
    if (s.first) await open(s.first);
    else status("no routine here: start from a template", "bad");
  })();
})();
