// hgmamba pose3d.html viewer: a small hand-written canvas-2D renderer (no library, no network).
// World frame: x right, y forward (away from the camera), z up, metres, floor z = 0.
// The data are embedded in <script id="hgmamba-data" type="application/json">.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("hgmamba-data").textContent);
  const canvas = document.getElementById("view");
  const ctx = canvas.getContext("2d");
  const slider = document.getElementById("frame");
  const playBtn = document.getElementById("play");
  const label = document.getElementById("label");
  const J = data.joint_parents.length;
  const LEFT = new Set([4, 5, 6, 11, 12, 13]);
  const RIGHT = new Set([1, 2, 3, 14, 15, 16]);
  const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
                   "#e377c2", "#8c564b", "#bcbd22", "#7f7f7f"];

  // ---- vector helpers
  const sub = (a, b) => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
  const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
  const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2],
                           a[0] * b[1] - a[1] * b[0]];
  const norm = (a) => { const n = Math.hypot(a[0], a[1], a[2]) || 1; return [a[0] / n, a[1] / n, a[2] / n]; };

  // joints[f][p] is null (person absent) or 3*J numbers in millimetres (null: joint missing)
  function joint(f, p, j) {
    const row = data.joints[f] && data.joints[f][p];
    if (!row || row[3 * j] === null) return null;
    return [row[3 * j] / 1000, row[3 * j + 1] / 1000, row[3 * j + 2] / 1000];
  }

  // ---- scene extent: every finite joint of the clip, and the camera
  function sceneBounds() {
    const lo = [Infinity, Infinity, 0], hi = [-Infinity, -Infinity, 1.8];
    const grow = (q) => { for (let k = 0; k < 3; k++) { lo[k] = Math.min(lo[k], q[k]); hi[k] = Math.max(hi[k], q[k]); } };
    for (let f = 0; f < data.frames; f++)
      for (let p = 0; p < data.persons; p++) { const q = joint(f, p, 0); if (q) grow(q); }
    if (data.camera) grow(data.camera.position);
    if (!isFinite(lo[0])) { lo[0] = lo[1] = -1; hi[0] = hi[1] = 1; }
    return { lo, hi };
  }
  const bounds = sceneBounds();
  // look at the people (median pelvis), from far enough to see most of them
  function peopleCentre() {
    const xs = [], ys = [];
    for (let f = 0; f < data.frames; f++)
      for (let p = 0; p < data.persons; p++) { const q = joint(f, p, 0); if (q) { xs.push(q[0]); ys.push(q[1]); } }
    const med = (a) => { if (!a.length) return 0; a.sort((u, v) => u - v); return a[a.length >> 1]; };
    const pct = (a, t) => (a.length ? a[Math.min(a.length - 1, Math.floor(t * a.length))] : 0);
    const c = [med(xs), med(ys)];
    const spread = Math.max(pct(xs, 0.9) - pct(xs, 0.1), pct(ys, 0.9) - pct(ys, 0.1), 2);
    return { c, spread };
  }
  const people = peopleCentre();
  const target = [people.c[0], people.c[1], 0.8];
  const span = Math.max(bounds.hi[0] - bounds.lo[0], bounds.hi[1] - bounds.lo[1], 2);
  const home = { az: -0.5, el: 0.35, dist: 1.3 * people.spread + 3 };
  const view = Object.assign({}, home);

  // ---- orbit camera -> screen projection
  function makeProjector() {
    const w = canvas.width, h = canvas.height;
    const ce = Math.cos(view.el);
    const eye = [target[0] + view.dist * ce * Math.sin(view.az),
                 target[1] - view.dist * ce * Math.cos(view.az),
                 target[2] + view.dist * Math.sin(view.el)];
    const fwd = norm(sub(target, eye));
    const right = norm(cross(fwd, [0, 0, 1]));
    const up = cross(right, fwd);
    const focal = 0.5 * h / Math.tan((45 * Math.PI / 180) / 2);
    const toView = (q) => { const v = sub(q, eye); return [dot(v, right), dot(v, up), dot(v, fwd)]; };
    const toScreen = (v) => ({ x: w / 2 + focal * v[0] / v[2], y: h / 2 - focal * v[1] / v[2], z: v[2] });
    return { toView, toScreen, point: (q) => toScreen(toView(q)) };
  }

  function segment(list, a, b, color, width) {
    if (a && b) list.push({ a, b, color, width });
  }

  function floorLines(list) {
    const step = span > 12 ? 1 : 0.5;
    const x0 = Math.floor((bounds.lo[0] - 1) / step) * step, x1 = Math.ceil((bounds.hi[0] + 1) / step) * step;
    const y0 = Math.floor((bounds.lo[1] - 1) / step) * step, y1 = Math.ceil((bounds.hi[1] + 1) / step) * step;
    for (let x = x0; x <= x1 + 1e-9; x += step) segment(list, [x, y0, 0], [x, y1, 0], "#c8c8c8", 1);
    for (let y = y0; y <= y1 + 1e-9; y += step) segment(list, [x0, y, 0], [x1, y, 0], "#c8c8c8", 1);
  }

  function cameraLines(list) {
    const c = data.camera;
    if (!c) return;
    const depth = Math.max(c.depth, 0.03 * span);  // visible however large the scene
    const corner = (sx, sy) => c.position.map((v, k) =>
      v + depth * (c.forward[k] + sx * c.half_w * c.right[k] + sy * c.half_h * c.down[k]));
    const k = [corner(-1, -1), corner(1, -1), corner(1, 1), corner(-1, 1)];
    for (let i = 0; i < 4; i++) {
      segment(list, c.position, k[i], "#333333", 1.5);
      segment(list, k[i], k[(i + 1) % 4], "#333333", 1.5);
    }
    segment(list, k[0], k[1], "#000000", 3);  // the image's top edge
  }

  function skeletonLines(list, f) {
    for (let p = 0; p < data.persons; p++) {
      const base = PALETTE[p % PALETTE.length];
      for (let j = 1; j < J; j++) {
        const a = joint(f, p, j), b = joint(f, p, data.joint_parents[j]);
        const shade = LEFT.has(j) ? base + "b0" : RIGHT.has(j) ? base : base + "e0";
        segment(list, a, b, shade, LEFT.has(j) ? 3 : 4);
      }
    }
  }

  // the part of a view-space segment in front of the near plane (depth > near), or null
  function clipNear(a, b, near) {
    if (a[2] < near && b[2] < near) return null;
    const cut = (p, q) => { const t = (near - p[2]) / (q[2] - p[2]); return p.map((v, k) => v + t * (q[k] - v)); };
    if (a[2] < near) a = cut(a, b);
    else if (b[2] < near) b = cut(b, a);
    return [a, b];
  }

  function draw() {
    const f = Number(slider.value);
    const project = makeProjector();
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    const floor = [], items = [];
    floorLines(floor);
    cameraLines(items);
    skeletonLines(items, f);
    const strokeAll = (list) => {
      const proj = [];
      for (const s of list) {
        const v = clipNear(project.toView(s.a), project.toView(s.b), 0.05);
        if (!v) continue;
        const ab = [project.toScreen(v[0]), project.toScreen(v[1])];
        proj.push({ ab, depth: (ab[0].z + ab[1].z) / 2, s });
      }
      proj.sort((u, v) => v.depth - u.depth);  // painter's order: far first
      ctx.lineCap = "round";
      for (const { ab, s } of proj) {
        ctx.strokeStyle = s.color;
        ctx.lineWidth = s.width;
        ctx.beginPath();
        ctx.moveTo(ab[0].x, ab[0].y);
        ctx.lineTo(ab[1].x, ab[1].y);
        ctx.stroke();
      }
    };
    strokeAll(floor);
    strokeAll(items);
    ctx.fillStyle = "#222222";
    ctx.font = "13px sans-serif";
    for (let p = 0; p < data.persons; p++) {
      const head = joint(f, p, 10);
      if (!head) continue;
      const q = project.point([head[0], head[1], head[2] + 0.15]);
      if (q.z > 0.05) ctx.fillText("id " + data.track_ids[p], q.x - 12, q.y);
    }
    if (data.camera) {
      const q = project.point(data.camera.position);
      if (q.z > 0.05) ctx.fillText(data.camera.label, q.x + 8, q.y - 8);
    }
    const t = data.fps > 0 ? (f / data.fps).toFixed(2) + " s" : "";
    label.textContent = "frame " + f + " / " + (data.frames - 1) + "  " + t;
  }

  // ---- controls: time slider, play/pause, mouse orbit and wheel zoom
  let playing = false, last = 0, carry = 0;
  function tick(now) {
    if (!playing) return;
    carry += (now - last) / 1000 * (data.fps || 25);
    last = now;
    if (carry >= 1) {
      const n = Math.floor(carry);
      carry -= n;
      slider.value = String((Number(slider.value) + n) % data.frames);
      draw();
    }
    requestAnimationFrame(tick);
  }
  function setPlaying(on) {
    playing = on && data.frames > 1;
    playBtn.textContent = playing ? "pause" : "play";
    if (playing) { last = performance.now(); requestAnimationFrame(tick); }
  }
  playBtn.addEventListener("click", () => setPlaying(!playing));
  slider.addEventListener("input", () => { setPlaying(false); draw(); });
  document.getElementById("reset").addEventListener("click", () => { Object.assign(view, home); draw(); });
  let drag = null;
  // pointer events: a mouse, a pen or one finger orbits
  canvas.addEventListener("pointerdown", (e) => { drag = { x: e.clientX, y: e.clientY }; canvas.setPointerCapture(e.pointerId); });
  canvas.addEventListener("pointerup", () => { drag = null; });
  canvas.addEventListener("pointercancel", () => { drag = null; });
  canvas.addEventListener("pointermove", (e) => {
    if (!drag) return;
    view.az -= (e.clientX - drag.x) * 0.01;
    view.el = Math.max(-0.1, Math.min(1.55, view.el + (e.clientY - drag.y) * 0.01));
    drag = { x: e.clientX, y: e.clientY };
    draw();
  });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    view.dist = Math.max(0.5, view.dist * Math.exp(e.deltaY * 0.001));
    draw();
  }, { passive: false });
  window.addEventListener("keydown", (e) => { if (e.key === " ") { e.preventDefault(); setPlaying(!playing); } });

  function resize() {
    canvas.width = canvas.clientWidth;
    canvas.height = canvas.clientHeight;
    draw();
  }
  window.addEventListener("resize", resize);
  slider.max = String(Math.max(0, data.frames - 1));
  slider.value = "0";
  resize();
  document.body.dataset.ready = "1";
})();
