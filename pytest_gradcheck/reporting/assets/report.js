(function () {
"use strict";
var T0 = performance.now();
var SVGNS = "http://www.w3.org/2000/svg";
/* lists packed as {__cols__: keys, __rows__: [[values]]} (see pack() in html_report.py) */
function unpack(o, deep) {
  if (Array.isArray(o)) { if (deep) for (var i = 0; i < o.length; i++) o[i] = unpack(o[i], true); return o; }
  if (o && typeof o === "object") {
    if (o.__cols__ && o.__rows__) {
      var ks = o.__cols__;
      return o.__rows__.map(function (r) {
        var d = {};
        for (var j = 0; j < ks.length; j++) d[ks[j]] = deep ? unpack(r[j], true) : r[j];
        return d;
      });
    }
    if (deep) for (var k in o) o[k] = unpack(o[k], true);
  }
  return o;
}
/* the top-level lists now; what a check's details show, when they are first opened */
var DATA = JSON.parse(document.getElementById("gradcheck-data").textContent);
for (var topKey in DATA) DATA[topKey] = unpack(DATA[topKey], false);
var PARSE_MS = performance.now() - T0;
var CHECKS = DATA.checks || [];
var SUMMARY = DATA.summary || {};
var SEVERITY = {error: 0, fail: 0, xpass: 1, inconclusive: 2, xfail: 2, caught: 2, pass: 3};
/* what every field means: the column headers' and cards' tooltips, and the legend under the table */
var HELP = {
  status: "the check's outcome, counted as pytest counts its test: pass; fail (an entry's error is above its tolerance); " +
          "inconclusive (an entry could not be judged: a kink, noise); error (the check did not finish: your code raised, " +
          "or the input was unusable); xfail / xpass (in a test marked xfail that failed / passed)",
  nodeid: "the pytest node id of the test that ran the check",
  label: "the check's label inside its test (several checks in one test have different labels)",
  ratio: "error / tolerance: the largest |analytic \u2212 numeric| / tolerance over the checked entries (in fast mode: " +
         "over the random-direction probes); 1 is the tolerance, above 1 fails. The bar is on a log scale from 1e-8 " +
         "to 1e4, the tick at 1; grey below 0.5, amber from 0.5 (within a factor 2 of failing), red from 1",
  max_abs_error: "largest |analytic \u2212 numeric| over the single entries compared; \u2013 where none was " +
                 "compared (a fast-mode check whose probes all agreed) or the check did not finish",
  max_rel_error: "largest |analytic \u2212 numeric| / max(|analytic|, |numeric|) over the single entries compared; " +
                 "\u2013 where none was compared or the check did not finish",
  n_evals: "evaluations of your function fun spent on the finite differences",
  method: "the finite-difference formula: central, forward, backward, central4 (5 points), complex (complex step)",
  mode: "full: every entry compared one by one; fast: random-direction probes, single entries only where a probe " +
        "disagrees (the escape probability says how likely a wrong gradient passes)",
  duration_s: "wall time of the check, seconds",
  kind: "what was checked: gradient, vjp (vector-Jacobian product), jvp, jacobian, hessian",
  entries: "single entries compared one by one, of all entries of the parameters",
  seed: "the seed of the random inputs of the check (fast-mode probes, random cotangents)",
  escape: "fast mode: the probability that a gradient with a wrong entry passes all probes",
  tolerance: "the rule an entry's |analytic \u2212 numeric| is judged by",
  analytic: "your gradient's value (the code under test)",
  numeric: "the finite-difference estimate from evaluations of fun",
  error_estimate: "the estimated error of the finite-difference estimate itself (truncation + roundoff)",
  entry_tolerance: "this entry's tolerance: a safety multiple of the error estimate plus a floor for the " +
                   "analytic side's own roundoff (or atol + rtol\u00b7|numeric| when those are set)",
  verdict: "pass / fail / inconclusive for this entry",
  regressed: "a check whose error / tolerance grew past the regression factor against the baseline, or that " +
             "passed in the baseline and fails now"
};
var COLUMNS = [   /* widths: .grow in the CSS */
  {key: "status", title: "status", num: false},
  {key: "nodeid", title: "test", num: false},
  {key: "label", title: "check", num: false},
  {key: "ratio", title: "error / tolerance", num: true},
  {key: "max_abs_error", title: "abs error", num: true},
  {key: "max_rel_error", title: "rel error", num: true},
  {key: "n_evals", title: "evals", num: true},
  {key: "method", title: "method", num: false},
  {key: "mode", title: "mode", num: false},
  {key: "duration_s", title: "time (s)", num: true}
];
/* what a diagnosis's "kind" says, in words (numerics/diagnose.py names them) */
var CAUSE = {
  bug: "your gradient code is wrong: the finite differences agree with each other at every step, your gradient does not",
  roundoff: "a step-size artefact: at a suitable step your gradient agrees with the finite differences; likely nothing is wrong",
  kink: "fun is not differentiable at or very near this point (ReLU, abs, max, a tie)",
  noise: "fun is noisy or nondeterministic at this scale",
  unsettled: "a probe disagreed, but no single entry does on its own",
  unknown: "no diagnosis could be made"
};
/* how many failing or unfinished checks open with the page: each draws up to three plots, and the
   first screen should still reach the table; the rest open with a click */
var OPEN_AT_START = 10;
var state = {key: null, dir: 1, status: "all", text: ""};
var rows = [];
var detailRows = {};
var haystack = [];
var regByKey = {};
(DATA.regressions || []).forEach(function (c) { regByKey[c.key] = c; });
var changeByKey = {};
["improvements", "new", "changed"].forEach(function (k) {
  (DATA[k] || []).forEach(function (c) { changeByKey[c.key] = c; });
});

function el(tag, attrs, kids) {
  var e = document.createElement(tag);
  setAll(e, attrs, kids);
  return e;
}
function sv(tag, attrs, kids) {
  var e = document.createElementNS(SVGNS, tag);
  setAll(e, attrs, kids);
  return e;
}
function setAll(e, attrs, kids) {
  if (attrs) {
    for (var k in attrs) {
      var v = attrs[k];
      if (v === null || v === undefined) continue;
      if (k === "text") e.textContent = v;
      else if (k === "cls") e.setAttribute("class", v);
      else e.setAttribute(k, v);
    }
  }
  if (kids) {
    for (var i = 0; i < kids.length; i++) {
      var c = kids[i];
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
  }
}
function isNum(x) { return typeof x === "number" && isFinite(x); }
function fmt(x) {
  if (x === null || x === undefined) return "\u2013";
  if (typeof x !== "number") return String(x);
  if (x === 0) return "0";
  if (Math.abs(x) >= 1e300) return x > 0 ? "\u221e" : "-\u221e";
  var a = Math.abs(x);
  if (a < 1e-3 || a >= 1e5) return x.toExponential(2).replace("e+", "e");
  return String(Number(x.toPrecision(3)));
}
function fmtLong(x) {
  if (!isNum(x)) return fmt(x);
  if (x === 0) return "0";
  var a = Math.abs(x);
  if (a < 1e-3 || a >= 1e6) return x.toExponential(6).replace("e+", "e");
  return String(Number(x.toPrecision(8)));
}
function where(e) {
  var idx = e.index && e.index.length ? "[" + e.index.join(", ") + "]" : "";
  return (e.leaf || "") + idx;
}
function badge(status, regressed) {
  var s = el("span", {}, [el("span", {cls: "badge " + status, text: status})]);
  if (regressed) s.appendChild(el("span", {cls: "badge regressed", text: "regressed", title: "regressed against the baseline"}));
  return s;
}
/* Below 0.5 a ratio is neutral grey: the tolerance is already a safety multiple (10x) of the
   estimated finite-difference error, so correct gradients land anywhere from 1e-8 to ~0.45 (the
   example project's largest passing ratio is 0.446) and a 0.2 is no warning.  From 0.5 the check is
   within a factor 2 of failing - a different seed, step or platform could cross 1 - so amber; red
   from 1, where it fails. */
var AMBER_FROM = 0.5;
function ratioColor(r) {
  if (!isNum(r)) return "#d0d7de";
  if (r >= 1) return "#cf222e";
  if (r >= AMBER_FROM) return "#d4a72c";
  return "#8c959f";
}
function ratioBar(r) {
  if (!isNum(r)) return null;   /* nothing measured: no bar (the cell says "\u2013") */
  var w = 0;
  if (isNum(r) && r > 0) w = Math.max(2, Math.min(100, (Math.log10(r) + 8) / 12 * 100));
  return el("span", {cls: "bar", title: "log scale 1e-8 \u2026 1e4; tick = tolerance"},
            [el("i", {style: "width:" + w.toFixed(1) + "%;background:" + ratioColor(r)}), el("b")]);
}

/* ---------- summary ---------- */
function card(cls, n, label, filter, tip) {
  var b = el(filter ? "button" : "div", {cls: "card " + cls + (n === 0 ? " zero" : ""), "data-filter": filter || null, type: filter ? "button" : null,
                                         title: tip || null},
             [el("span", {cls: "n", text: String(n)}), el("span", {cls: "t", text: label})]);
  if (filter) b.addEventListener("click", function () { setStatus(filter); });
  return b;
}
/* a regression needs a baseline: without one compared, there is nothing to count */
function baselineCompared() {
  var base = DATA.baseline;
  return !!(base && (base.compared || base.compared === undefined)) || (DATA.regressions || []).length > 0;
}
function plural(n, one, many) { return n + " " + (n === 1 ? one : (many || one + "s")); }
/* pytest counts tests, this report counts checks: one sentence that reconciles the two */
function tallyText() {
  var c = SUMMARY.counts || {}, p = SUMMARY.pytest, nt = SUMMARY.n_tests || 0, parts = [];
  var checks = [[c.fail, "failed"], [c.error, "errored (did not finish)"], [c.xfail, "xfailed"], [c.xpass, "xpassed"],
                [c.caught, "caught by their tests"], [c.inconclusive, "inconclusive"], [c.pass, "passed"]].filter(function (x) { return x[0]; })
               .map(function (x) { return x[0] + " " + x[1]; });
  var s = "pytest counts tests, this report counts checks: " + plural(nt, "test") + " ran " +
          plural(SUMMARY.total || 0, "check") + (checks.length ? " (" + checks.join(", ") + ")" : "") + ".";
  if (p) {
    var ran = (p.passed || 0) + (p.failed || 0) + (p.xfailed || 0) + (p.xpassed || 0) + (p.error || 0);
    var outs = [[p.failed, "failed"], [p.error, "errors"], [p.xfailed, "xfailed"], [p.xpassed, "xpassed"],
                [p.passed, "passed"]].filter(function (x) { return x[0]; }).map(function (x) { return x[0] + " " + x[1]; });
    s += " pytest's count of the same session: " + (outs.length ? outs.join(", ") : "no tests run");
    var notRun = [[p.skipped, "skipped"], [p.deselected, "deselected"]].filter(function (x) { return x[0]; })
                 .map(function (x) { return x[0] + " " + x[1]; });
    if (notRun.length) s += "; not run: " + notRun.join(", ");
    s += ".";
    if (ran > nt) s += " The other " + plural(ran - nt, "test") + " that ran made no gradient check (plain tests, or tests that failed before their first check).";
  }
  if (SUMMARY.n_tests_stopped) {
    s += " " + plural(SUMMARY.n_tests_stopped, "test") + " stopped at a failing or unfinished check: any check after it in the same test did not run and is in no count.";
  }
  return s;
}
function renderSummary() {
  var c = SUMMARY.counts || {};
  var box = document.getElementById("cards");
  box.appendChild(card("", SUMMARY.total || 0, "checks", "all", "every gradient check of the run (a test may run several, or none); click: show all"));
  box.appendChild(card("fail", c.fail || 0, "failed", "fail", "checks with an entry above its tolerance"));
  box.appendChild(card("fail", c.error || 0, "errored (did not finish)", "error", "checks that did not finish: your code raised, the input was unusable, or the run was interrupted"));
  if (c.xfail) box.appendChild(card("inconclusive", c.xfail, "xfailed (expected)", "xfail", "failed or unfinished checks in a test marked xfail that failed, as expected"));
  if (c.xpass) box.appendChild(card("inconclusive", c.xpass, "xpassed (unexpected)", "xpass", "passed checks in a test marked xfail that passed"));
  if (c.caught) box.appendChild(card("info", c.caught, "caught by their tests", "caught", "failed checks whose error the test caught (pytest.raises) or skipped after: the test decided what the failure means"));
  box.appendChild(card("inconclusive", c.inconclusive || 0, "inconclusive", "inconclusive", "checks with an entry that could not be judged (a kink, noise), and none failed"));
  box.appendChild(card("pass", c.pass || 0, "passed", "pass", "checks whose every entry is within its tolerance"));
  if (baselineCompared()) box.appendChild(card("regressed", SUMMARY.n_regressions || 0, "regressions", "regressed", HELP.regressed));
  box.appendChild(card("info", (SUMMARY.n_evals || 0).toLocaleString("en-US"), "function evaluations", null, HELP.n_evals + ", all checks"));
  box.appendChild(card("info", fmt(SUMMARY.duration_s || 0) + " s", "time in checks", null, "wall time of all checks together, seconds"));
  document.getElementById("tally").textContent = tallyText();
  var h = SUMMARY.histogram;
  if (h && h.counts && h.counts.length) {
    var hb = document.getElementById("overall-hist");
    hb.appendChild(el("h3", {text: "All entries of all checks: error / tolerance"}));
    hb.appendChild(histSvg(h, 430, 130));
  }
  var ctx = DATA.context || {};
  var parts = [];
  ["platform", "python", "numpy", "torch", "jax"].forEach(function (k) { if (ctx[k]) parts.push(k + " " + ctx[k]); });
  if (ctx.dtypes) parts.push("dtypes " + ctx.dtypes.join(", "));
  document.getElementById("ctx").textContent = "generated " + (DATA.generated || ctx.time || "") + (parts.length ? " \u00b7 " + parts.join(" \u00b7 ") : "");
  renderChanges();
}
function renderChanges() {
  var box = document.getElementById("changes");
  var regs = DATA.regressions || [];
  var base = DATA.baseline || null;
  if (!regs.length && !(DATA.improvements || []).length && !(DATA["new"] || []).length && !base) return;
  box.appendChild(el("h2", {text: regs.length ? "Regressions against the baseline (" + regs.length + ")" : "Baseline comparison"}));
  if (base && base.path) box.appendChild(el("p", {cls: "kv", text: "baseline: " + base.path}));
  ((base && base.context_warnings) || []).forEach(function (w) { box.appendChild(el("div", {cls: "note", text: w})); });
  if (regs.length) box.appendChild(changeTable(regs, "regressions"));
  else box.appendChild(el("p", {text: "No regressions."}));
  [["improvements", "improvement", "improvements"], ["new", "new check", "new checks"],
   ["changed", "other status change", "other status changes"]].forEach(function (p) {
    var list = DATA[p[0]] || [];
    if (!list.length) return;
    var d = el("details", {cls: "changes"}, [el("summary", {text: list.length + " " + (list.length === 1 ? p[1] : p[2])})]);
    d.appendChild(changeTable(list, p[0]));
    box.appendChild(d);
  });
}
function changeTable(list, id) {
  var t = el("table", {cls: "small", id: "table-" + id});
  var hd = [["check", "test node id :: check label"], ["status", "baseline status \u2192 this run's"],
            ["ratio", "error / tolerance: baseline \u2192 this run"], ["growth", "this run's ratio / the baseline's"],
            ["what", "what changed"]];
  t.appendChild(el("thead", {}, [el("tr", {}, hd.map(function (h) { return el("th", {text: h[0], title: h[1]}); }))]));
  var tb = el("tbody");
  list.forEach(function (c) {
    var st = (c.baseline_status ? c.baseline_status + " \u2192 " : "") + c.status;
    var ra = (c.baseline_ratio !== null && c.baseline_ratio !== undefined ? fmt(c.baseline_ratio) + " \u2192 " : "") + fmt(c.ratio);
    var link = el("a", {href: "#", cls: "mono", text: c.key});
    link.addEventListener("click", function (ev) { ev.preventDefault(); reveal(c.key); });
    tb.appendChild(el("tr", {}, [el("td", {}, [link]), el("td", {text: st}), el("td", {cls: "num", text: ra}),
      el("td", {cls: "num", text: isNum(c.growth) ? "\u00d7" + fmt(c.growth) : "\u2013"}), el("td", {text: c.reason || ""})]));
  });
  t.appendChild(tb);
  return t;
}
function reveal(key) {
  setStatus("all");
  setText("");
  for (var i = 0; i < CHECKS.length; i++) {
    if (CHECKS[i].key === key) {
      if (!detailRows[i]) toggle(i);
      getRow(i).scrollIntoView({block: "center"});
      return;
    }
  }
}

/* ---------- table ---------- */
function buildHeader() {
  var tr = document.getElementById("head-row");
  COLUMNS.forEach(function (col) {
    var th = el("div", {cls: col.num ? "num" : null, "data-key": col.key, tabindex: "0", role: "columnheader", "aria-sort": "none",
                             title: HELP[col.key] + " (click to sort)"},
                [col.title, el("span", {cls: "arrow"})]);
    th.addEventListener("click", function () { sortBy(col.key); });
    th.addEventListener("keydown", function (ev) { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); sortBy(col.key); } });
    tr.appendChild(th);
  });
}
function getRow(i) {
  if (rows[i]) return rows[i];
  var c = CHECKS[i];
  var tr = el("div", {role: "row", cls: "row grow st-" + c.status + (c.regressed ? " regressed" : ""), "data-i": String(i), "data-key": c.key,
                     "data-status": c.status, tabindex: "0"});
  var ratioTd = el("div", {cls: "num", title: HELP.ratio},
                   [fmt(c.ratio), ratioBar(c.ratio)]);
  setAll(tr, null, [
    el("div", {}, [badge(c.status, c.regressed)]),
    el("div", {cls: "mono nodeid", text: c.nodeid}),
    el("div", {cls: "mono label", text: c.label, title: c.label}),   /* wraps: never cut */
    ratioTd,
    numCell(c, "max_abs_error"),
    numCell(c, "max_rel_error"),
    numCell(c, "n_evals"),
    el("div", {text: c.method || ""}),
    el("div", {text: c.mode || ""}),
    el("div", {cls: "num", text: fmt(c.duration_s)})
  ]);
  rows[i] = tr;
  return tr;
}
/* a number, or "\u2013" with the reason it was not measured (never a 0 that was not measured) */
function unmeasuredWhy(c) {
  if (c.status === "error" || c.error) return "not measured: the check did not finish";
  if (c.mode === "fast" && !c.n_checked) return "not measured: fast mode compared no single entry (its random-direction probes all agreed)";
  return "not measured";
}
function numCell(c, key) {
  var v = c[key];
  if (v === null || v === undefined) return el("div", {cls: "num unmeasured", text: "\u2013", title: unmeasuredWhy(c)});
  return el("div", {cls: "num", text: key === "n_evals" ? String(v) : fmt(v)});
}
function hay(i) {
  if (haystack[i] === undefined) {
    var c = CHECKS[i];
    haystack[i] = [c.nodeid, c.label, c.status, c.method, c.mode, c.kind, c.regressed ? "regressed" : "",
                   c.diagnosis && c.diagnosis.summary ? c.diagnosis.summary : ""].join(" ").toLowerCase();
  }
  return haystack[i];
}
function visible(i) {
  var c = CHECKS[i];
  if (state.status === "regressed") { if (!c.regressed) return false; }
  else if (state.status !== "all" && c.status !== state.status) return false;
  if (state.text) {
    var h = hay(i);
    var terms = state.text.toLowerCase().split(/\s+/);
    for (var t = 0; t < terms.length; t++) if (terms[t] && h.indexOf(terms[t]) < 0) return false;
  }
  return true;
}
function cmpVal(a, b) {
  var an = a === null || a === undefined, bn = b === null || b === undefined;
  if (an || bn) return an === bn ? 0 : (an ? 1 : -1);
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a) < String(b) ? -1 : (String(a) > String(b) ? 1 : 0);
}
function order() {
  var idx = [];
  for (var i = 0; i < CHECKS.length; i++) if (visible(i)) idx.push(i);
  var key = state.key, dir = state.dir;
  idx.sort(function (x, y) {
    var a = CHECKS[x], b = CHECKS[y], r = 0;
    if (key === null) {
      r = (a.regressed ? -1 : 0) - (b.regressed ? -1 : 0);
      if (!r) r = (SEVERITY[a.status] || 0) - (SEVERITY[b.status] || 0);
      if (!r) r = -cmpVal(a.ratio, b.ratio);
    } else if (key === "status") {
      r = dir * ((SEVERITY[a.status] || 0) - (SEVERITY[b.status] || 0));
      if (!r) r = dir * ((b.regressed ? 1 : 0) - (a.regressed ? 1 : 0));
    } else {
      var va = a[key], vb = b[key];
      var an = va === null || va === undefined, bn = vb === null || vb === undefined;
      if (an || bn) r = an === bn ? 0 : (an ? 1 : -1);   /* missing values last in both directions */
      else r = dir * cmpVal(va, vb);
    }
    return r || x - y;
  });
  return idx;
}
function update() {
  var t0 = performance.now();
  var tb = document.getElementById("rows");
  var idx = order();
  var frag = document.createDocumentFragment();
  for (var k = 0; k < idx.length; k++) {
    frag.appendChild(getRow(idx[k]));
    if (detailRows[idx[k]]) frag.appendChild(detailRows[idx[k]]);
  }
  tb.textContent = "";
  tb.appendChild(frag);
  document.getElementById("empty").style.display = idx.length ? "none" : "";
  document.getElementById("shown").textContent = "showing " + idx.length + " of " + CHECKS.length + " checks";
  var ths = document.querySelectorAll("#head-row > div");
  for (var j = 0; j < ths.length; j++) {
    var k2 = ths[j].getAttribute("data-key"), on = k2 === state.key;
    ths[j].setAttribute("aria-sort", on ? (state.dir > 0 ? "ascending" : "descending") : "none");
    ths[j].querySelector(".arrow").textContent = on ? (state.dir > 0 ? "\u25b2" : "\u25bc") : "";
  }
  var bs = document.querySelectorAll("#status-filter button");
  for (var b = 0; b < bs.length; b++) bs[b].classList.toggle("active", bs[b].getAttribute("data-filter") === state.status);
  window.gradcheckReport.lastUpdateMs = performance.now() - t0;
}
function sortBy(key) {
  if (state.key === key) state.dir = -state.dir;
  else {
    state.key = key;
    var col = COLUMNS.filter(function (c) { return c.key === key; })[0];
    state.dir = col && col.num ? -1 : 1;   /* numbers: largest first; text: a-z */
  }
  update();
}
function setStatus(s) { state.status = s; var sel = document.getElementById("status-select"); if (sel) sel.value = s; update(); }
function setText(s) { state.text = s.trim(); var inp = document.getElementById("text-filter"); if (inp.value !== s) inp.value = s; update(); }
function buildControls() {
  var box = document.getElementById("status-filter");
  var c = SUMMARY.counts || {};
  [["all", "all", SUMMARY.total || 0], ["fail", "failed", c.fail || 0], ["error", "errors", c.error || 0],
   ["inconclusive", "inconclusive", c.inconclusive || 0],
   ["pass", "passed", c.pass || 0], ["xfail", "xfailed", c.xfail || 0], ["xpass", "xpassed", c.xpass || 0],
   ["caught", "caught", c.caught || 0],
   ["regressed", "regressed", SUMMARY.n_regressions || 0]].forEach(function (p) {
    if ((p[0] === "xfail" || p[0] === "xpass" || p[0] === "caught") && !p[2]) return;  /* rare: only when there are some */
    if (p[0] === "regressed" && !baselineCompared()) return;
    var b = el("button", {type: "button", "data-filter": p[0], text: p[1] + " (" + p[2] + ")"});
    b.addEventListener("click", function () { setStatus(p[0]); });
    box.appendChild(b);
  });
  var inp = document.getElementById("text-filter");
  inp.addEventListener("input", function () { state.text = inp.value.trim(); update(); });
  document.getElementById("rows").addEventListener("click", function (ev) {
    var tr = ev.target.closest(".row");
    if (tr) toggle(Number(tr.getAttribute("data-i")));
  });
  document.getElementById("rows").addEventListener("keydown", function (ev) {
    if (ev.key !== "Enter") return;
    var tr = ev.target.closest(".row");
    if (tr) toggle(Number(tr.getAttribute("data-i")));
  });
}
function toggle(i) {
  var tr = getRow(i);
  if (detailRows[i]) {
    detailRows[i].remove();
    delete detailRows[i];
    tr.classList.remove("open");
    return;
  }
  var d = el("div", {cls: "details", role: "row", "data-i": String(i)}, [renderDetails(CHECKS[i])]);
  detailRows[i] = d;
  tr.classList.add("open");
  if (tr.parentNode) tr.parentNode.insertBefore(d, tr.nextSibling);
}

/* failing and unfinished checks open with the page, worst first: the diagnosis is what a reader came for */
function openFailures() {
  var idx = order().filter(function (i) { return CHECKS[i].status === "fail" || CHECKS[i].status === "error"; });
  idx.slice(0, OPEN_AT_START).forEach(function (i) { toggle(i); });
  if (idx.length > OPEN_AT_START) {
    document.getElementById("opened").textContent = "The " + OPEN_AT_START + " worst of " + idx.length +
      " failed or unfinished checks are open below; click any row to open or close it.";
  } else if (idx.length) {
    document.getElementById("opened").textContent = (idx.length === 1 ? "The failed or unfinished check is" :
      "The " + idx.length + " failed or unfinished checks are") + " open below; click any row to open or close it.";
  }
}
function buildLegend() {
  var dl = document.getElementById("legend-list");
  var items = [["status", HELP.status]];
  COLUMNS.slice(1).forEach(function (col) { items.push([col.title, HELP[col.key]]); });
  items.push(["kind", HELP.kind], ["entries compared", HELP.entries], ["seed", HELP.seed],
             ["escape probability", HELP.escape], ["analytic / numeric", HELP.analytic + " / " + HELP.numeric],
             ["error estimate", HELP.error_estimate], ["tolerance (of an entry)", HELP.entry_tolerance],
             ["likely cause", "the diagnosis's verdict on a failure: " + Object.keys(CAUSE).map(function (k) { return k + " (" + CAUSE[k] + ")"; }).join("; ")],
             ["bug shape", "how your gradient relates to the finite differences across a whole leaf (sign flip, transposed, a missing factor or term)"],
             ["\u2013", "not measured (never a 0 that was not measured)"]);
  if (baselineCompared()) items.push(["regressed", HELP.regressed]);
  items.forEach(function (x) { dl.appendChild(el("dt", {text: x[0]})); dl.appendChild(el("dd", {text: x[1]})); });
}

/* ---------- details ---------- */
function tolText(t) {
  if (!t || !t.rule) return "";
  if (t.rule === "explicit") return "rule: |analytic \u2212 numeric| \u2264 atol + rtol\u00b7|numeric|, atol=" + fmt(t.atol) + ", rtol=" + fmt(t.rtol);
  return "rule: |analytic \u2212 numeric| \u2264 " + (t.safety !== undefined ? t.safety + " \u00d7 " : "") +
         "finite-difference error estimate + analytic-precision floor";
}
/* the diagnosis first (what is wrong and what to try), then the numbers, then the plots and tables */
function renderDetails(c) {
  if (!c.__full) { for (var k in c) c[k] = unpack(c[k], true); c.__full = true; }
  var box = el("div", {cls: "detail-box"});
  if (c.error) box.appendChild(el("div", {cls: "regline", text: "did not finish (" + c.error.type + "): " +
                                          c.error.exception + ": " + c.error.message}));
  if (c.xfail_reason) box.appendChild(el("div", {cls: "kv", text: (c.status === "xpass" ? "passed, but marked xfail: "
                                                                   : "expected to fail (xfail): ") + c.xfail_reason}));
  if (c.diagnosis) box.appendChild(diagnosisBlock(c.diagnosis));
  if (regByKey[c.key]) box.appendChild(el("div", {cls: "regline", text: "regression: " + regByKey[c.key].reason}));
  else if (changeByKey[c.key]) box.appendChild(el("div", {cls: "kv", text: "baseline: " + changeByKey[c.key].reason}));
  (c.messages || []).forEach(function (m) { box.appendChild(el("div", {cls: "note", text: m})); });
  var kv = [["kind", c.kind, HELP.kind],
            ["entries compared", c.n_checked + " of " + c.n_params, HELP.entries],
            ["method", c.method, HELP.method], ["mode", c.mode, HELP.mode], ["seed", c.seed, HELP.seed],
            ["evaluations", c.n_evals, HELP.n_evals]];
  if (isNum(c.escape_probability)) kv.push(["escape probability", fmt(c.escape_probability), HELP.escape]);
  var p = el("p", {cls: "kv"});
  kv.forEach(function (x, j) {
    if (x[1] === null || x[1] === undefined) return;
    if (p.childNodes.length) p.appendChild(document.createTextNode(" \u00b7 "));
    p.appendChild(el("span", {cls: "field", title: x[2]}, [x[0] + " ", el("b", {text: String(x[1])})]));
  });
  if (!c.error) box.appendChild(p);
  var tt = tolText(c.tolerance);
  if (tt) box.appendChild(el("p", {cls: "kv", title: HELP.tolerance, text: tt}));
  box.appendChild(el("p", {cls: "kv"}, ["rerun: ", el("span", {cls: "mono rerun", text: c.rerun})]));
  var grid = el("div", {cls: "dgrid"});
  if (c.histogram && c.histogram.counts && c.histogram.counts.length && sum(c.histogram.counts)) {
    grid.appendChild(el("div", {cls: "hist"}, [el("h3", {text: "Entries by error / tolerance"}), histSvg(c.histogram, 420, 130)]));
  }
  (c.leaves || []).forEach(function (leaf) {
    if (leaf.ratio_grid && leaf.ratio_grid.length) grid.appendChild(heatmap(leaf));
  });
  var sweeps = findSweeps(c.diagnosis);
  if (sweeps.length) grid.appendChild(el("div", {cls: "sweep"}, [el("h3", {text: "Error versus step"}), sweepSvg(sweeps, 420, 230)]));
  if (grid.childNodes.length) box.appendChild(grid);
  if (c.worst && c.worst.length) box.appendChild(worstTable(c.worst));
  if (c.leaves && c.leaves.length) box.appendChild(leavesTable(c.leaves));
  return box;
}
function sum(a) { var t = 0; for (var i = 0; i < a.length; i++) t += a[i] || 0; return t; }
function diagnosisBlock(d) {
  var wrap = el("div", {cls: "diagnosis"});
  if (d.summary) wrap.appendChild(el("div", {cls: "diag"}, [el("b", {text: "diagnosis: "}), String(d.summary)]));
  if (d.kind) {
    wrap.appendChild(el("p", {cls: "kv cause", title: "the diagnosis's verdict on the cause, from the error-versus-step sweep and the shape of the errors across each leaf"},
                        ["likely cause: ", el("b", {text: String(d.kind)}), " \u2014 " + (CAUSE[d.kind] || "")]));
  }
  var pat = d.pattern;
  if (pat && typeof pat === "object" && !Array.isArray(pat)) {
    for (var leaf in pat) {
      var pv = pat[leaf] || {};
      var txt = typeof pv === "object" ? [pv.label ? "\u2018" + pv.label + "\u2019" : "", pv.explanation || ""].filter(Boolean).join(": ") : String(pv);
      wrap.appendChild(el("p", {cls: "kv pattern", title: "how your gradient relates to the finite differences across the whole leaf"},
                          ["bug shape in ", el("b", {cls: "mono", text: leaf}), " " + txt]));
    }
  }
  return wrap;
}
function worstTable(worst) {
  var t = el("table", {cls: "small worst"});
  var hd = [["where", "the entry: leaf and index"], ["analytic (yours)", HELP.analytic], ["numeric (finite diff.)", HELP.numeric],
            ["|a \u2212 n|", "|analytic \u2212 numeric|"], ["rel error", HELP.max_rel_error.split(" over")[0]],
            ["error estimate", HELP.error_estimate], ["tolerance", HELP.entry_tolerance],
            ["ratio", "|analytic \u2212 numeric| / tolerance; above 1 fails"], ["verdict", HELP.verdict]];
  t.appendChild(el("thead", {}, [el("tr", {}, hd.map(function (h, j) { return el("th", {cls: j && j < 8 ? "num" : null, text: h[0], title: h[1]}); }))]));
  var tb = el("tbody");
  worst.forEach(function (e) {
    tb.appendChild(el("tr", {}, [
      el("td", {cls: "mono", text: where(e)}),
      el("td", {cls: "num mono", text: fmtLong(e.analytic)}),
      el("td", {cls: "num mono", text: fmtLong(e.numeric)}),
      el("td", {cls: "num", text: fmt(e.abs_error)}),
      el("td", {cls: "num", text: fmt(e.rel_error)}),
      el("td", {cls: "num", text: fmt(e.error_estimate)}),
      el("td", {cls: "num", text: fmt(e.tolerance)}),
      el("td", {cls: "num", text: fmt(e.ratio)}),
      el("td", {cls: "v-" + e.verdict, text: e.verdict + (e.reason ? " (" + e.reason + ")" : "")})
    ]));
  });
  t.appendChild(tb);
  return el("div", {}, [el("h3", {text: "Worst entries"}), t]);
}
function leavesTable(leaves) {
  var t = el("table", {cls: "small leaves"});
  var hd = [["leaf", "a parameter array (a leaf of the params pytree)"], ["shape", "its shape"], ["dtype", "its dtype"],
            ["max ratio", "the largest error / tolerance among its compared entries; \u2013 where none was compared"],
            ["pass", "entries within their tolerance"], ["fail", "entries above their tolerance"],
            ["inconclusive", "entries that could not be judged (a kink, noise)"]];
  t.appendChild(el("thead", {}, [el("tr", {}, hd.map(function (h) { return el("th", {text: h[0], title: h[1]}); }))]));
  var tb = el("tbody");
  leaves.forEach(function (l) {
    var cn = l.counts || {};
    tb.appendChild(el("tr", {}, [el("td", {cls: "mono", text: l.path}), el("td", {text: "(" + (l.shape || []).join(", ") + ")"}),
      el("td", {text: l.dtype || ""}), el("td", {cls: "num", text: fmt(l.max_ratio)}), el("td", {cls: "num", text: String(cn.pass || 0)}),
      el("td", {cls: "num", text: String(cn.fail || 0)}), el("td", {cls: "num", text: String(cn.inconclusive || 0)})]));
  });
  t.appendChild(tb);
  return el("div", {}, [el("h3", {text: "Leaves"}), t]);
}

/* histogram of per-entry ratios on the fixed log10 bins; bar height ~ log(1 + count) */
function histSvg(h, W, H) {
  var counts = h.counts, n = counts.length, L = h.log10_edges || [];
  var ml = 8, mr = 8, mt = 16, mb = 30, pw = W - ml - mr, ph = H - mt - mb, bw = pw / n;
  var max = 0;
  counts.forEach(function (c) { max = Math.max(max, Math.log(1 + c)); });
  var s = sv("svg", {width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img", cls: "histogram",
                     "aria-label": "histogram of error/tolerance ratios"});
  s.appendChild(sv("line", {x1: ml, x2: ml + pw, y1: mt + ph, y2: mt + ph, stroke: "#afb8c1"}));
  var tolBin = L.indexOf(0);
  counts.forEach(function (c, i) {
    var hgt = max > 0 ? Math.log(1 + c) / max * ph : 0;
    var lo = i === 0 ? "0" : "1e" + L[i - 1], hi = i === n - 1 ? "\u221e" : "1e" + L[i];
    var bad = tolBin >= 0 && i > tolBin;
    var r = sv("rect", {x: (ml + i * bw + 1).toFixed(1), y: (mt + ph - hgt).toFixed(1), width: (bw - 2).toFixed(1), height: hgt.toFixed(1),
                       fill: bad ? "#cf222e" : "#8c959f", "data-count": String(c)},
               [sv("title", {text: c + " entries with ratio in [" + lo + ", " + hi + ")"})]);
    s.appendChild(r);
    if (c > 0) s.appendChild(sv("text", {x: (ml + (i + 0.5) * bw).toFixed(1), y: (mt + ph - hgt - 3).toFixed(1), "text-anchor": "middle",
                                         "font-size": "9.5"}, [String(c)]));
  });
  for (var i = 0; i < L.length; i++) {
    if (L[i] % 2 !== 0 && L[i] !== 0) continue;
    var x = ml + (i + 1) * bw;
    s.appendChild(sv("line", {x1: x, x2: x, y1: mt + ph, y2: mt + ph + 3, stroke: "#afb8c1"}));
    s.appendChild(sv("text", {x: x, y: mt + ph + 14, "text-anchor": "middle", "font-size": "9.5"}, [L[i] === 0 ? "1" : "1e" + L[i]]));
  }
  if (tolBin >= 0) {
    var xt = ml + (tolBin + 1) * bw;
    s.appendChild(sv("line", {x1: xt, x2: xt, y1: mt - 8, y2: mt + ph, cls: "tol"}));
    s.appendChild(sv("text", {x: xt + 3, y: mt - 2, "font-size": "10", fill: "#cf222e", style: "fill:#cf222e"}, ["tolerance"]));
  }
  s.appendChild(sv("text", {x: ml + pw / 2, y: H - 2, "text-anchor": "middle", "font-size": "10"},
                   ["|analytic \u2212 numeric| / tolerance (log scale; bar height ~ log count)"]));
  return s;
}
/* v = log10(ratio): the colours of ratioColor - a neutral blue-grey that darkens with the ratio
   below AMBER_FROM, amber up to 1, reds above */
function heatColor(v) {
  if (v === null || v === undefined) return "#f6f8fa";
  if (v >= 0) return v >= 2 ? "#8e1519" : (v >= 1 ? "#b3261e" : "#e5534b");
  if (v >= Math.log10(AMBER_FROM)) return "#d4a72c";
  var t = Math.max(0, Math.min(1, (v + 8) / 8));        /* -8 -> 0, 0 -> 1 */
  return "hsl(212,14%," + (94 - 40 * t).toFixed(0) + "%)";
}
function heatmap(leaf) {
  var g = leaf.ratio_grid, R = g.length, C = g[0].length;
  var cell = Math.max(4, Math.min(28, Math.floor(240 / Math.max(R, C))));
  var W = C * cell + 2, H = R * cell + 2;
  var s = sv("svg", {width: W, height: H, viewBox: "0 0 " + W + " " + H, cls: "heatmap", role: "img",
                     "aria-label": "log10 error/tolerance of " + leaf.path});
  for (var i = 0; i < R; i++) {
    for (var j = 0; j < C; j++) {
      var v = g[i][j];
      s.appendChild(sv("rect", {x: 1 + j * cell, y: 1 + i * cell, width: cell, height: cell, fill: heatColor(v)},
                       [sv("title", {text: "block (" + i + ", " + j + "): " + (v === null ? "exact" : "ratio 1e" + v.toFixed(2))})]));
    }
  }
  var shape = "(" + (leaf.shape || []).join(", ") + ")";
  return el("div", {cls: "heat"}, [el("h3", {text: leaf.path + " " + shape}), s,
    el("div", {cls: "legend", text: "log10 error/tolerance" + (R < (leaf.shape || [0])[0] || C < (leaf.shape || [0, 0])[1] ? " (max per block)" : "") +
      ": light to dark grey up to 0.5 \u00b7 amber 0.5\u20131 \u00b7 red > 1 (fails) \u00b7 white: exact"})]);
}

/* error-versus-step data: any array of {h, error} points (with a parallel "tolerance" list of the same
   length beside it, drawn dashed), or {h: [...], error: [...]}, anywhere inside the diagnosis */
function numArr(a) { return Array.isArray(a) && a.length > 0 && a.every(function (x) { return x === null || typeof x === "number"; }); }
function findSweeps(d) {
  var out = [];
  var HK = ["h", "step", "steps", "hs"], EK = ["error", "errors", "err", "abs_error", "abs_errors", "discrepancy"];
  function pick(o, ks) { for (var i = 0; i < ks.length; i++) if (o[ks[i]] !== undefined) return o[ks[i]]; return undefined; }
  function isPts(a) {
    return Array.isArray(a) && a.length > 0 &&
      a.every(function (p) { return p && typeof p === "object" && !Array.isArray(p) && typeof pick(p, HK) === "number"; }) &&
      a.some(function (p) { return typeof pick(p, EK) === "number"; });
  }
  function name(o, fallback) {
    var n = fallback;
    if (o.label) n = String(o.label);
    else if (o.where) n = String(o.where);
    else if (typeof o.leaf === "string") n = where(o);
    if (typeof o.classification === "string") n += " (" + o.classification + ")";
    return n;
  }
  function walk(o, label, depth) {
    if (!o || typeof o !== "object" || depth > 6 || out.length >= 8) return;
    if (Array.isArray(o)) {
      if (isPts(o)) { out.push({name: label, pts: o.map(function (p) { return [pick(p, HK), pick(p, EK)]; }), tol: null}); return; }
      o.forEach(function (x, i) { walk(x, label + "[" + i + "]", depth + 1); });
      return;
    }
    var hv = pick(o, HK), ev = pick(o, EK);
    if (numArr(hv) && numArr(ev) && hv.length === ev.length) {
      out.push({name: name(o, label), pts: hv.map(function (h, i) { return [h, ev[i]]; }), tol: null});
      return;
    }
    for (var k in o) {
      var v = o[k];
      if (isPts(v)) {
        var tol = numArr(o.tolerance) && o.tolerance.length === v.length ? o.tolerance : null;
        out.push({name: name(o, label), pts: v.map(function (p, i) { return [pick(p, HK), pick(p, EK), tol ? tol[i] : null]; }),
                  tol: tol});
      } else if (v && typeof v === "object") {
        walk(v, k === "sweep" || k === "sweeps" || k === "entries" ? label : k, depth + 1);
      }
    }
  }
  walk(d, "sweep", 0);
  out.forEach(function (s) { s.pts = s.pts.filter(function (p) { return isNum(p[0]) && isNum(p[1]) && p[0] > 0 && p[1] > 0; }); });
  return out.filter(function (s) { return s.pts.length > 0; });
}
function sweepSvg(series, W, H) {
  var COLORS = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#bc4c00", "#1b7c83", "#9a6700", "#57606a"];
  var xs = [], ys = [];
  series.forEach(function (s) {
    s.pts.forEach(function (p) {
      xs.push(Math.log10(p[0])); ys.push(Math.log10(p[1]));
      if (isNum(p[2]) && p[2] > 0) ys.push(Math.log10(p[2]));
    });
  });
  var x0 = Math.floor(Math.min.apply(null, xs)), x1 = Math.ceil(Math.max.apply(null, xs));
  var y0 = Math.floor(Math.min.apply(null, ys) - 0.25), y1 = Math.ceil(Math.max.apply(null, ys) + 0.25);
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) y1 = y0 + 1;
  var ml = 48, mr = 10, mt = 10, mb = 34 + 14 * Math.min(series.length, 4), pw = W - ml - mr, ph = H - mt - mb;
  function X(v) { return ml + (v - x0) / (x1 - x0) * pw; }
  function Y(v) { return mt + ph - (v - y0) / (y1 - y0) * ph; }
  var s = sv("svg", {width: W, height: H, viewBox: "0 0 " + W + " " + H, cls: "sweep-plot", role: "img", "aria-label": "error versus step, log-log"});
  s.appendChild(sv("rect", {x: ml, y: mt, width: pw, height: ph, fill: "none", stroke: "#d1d9e0"}));
  var xstep = Math.max(1, Math.ceil((x1 - x0) / 8)), ystep = Math.max(1, Math.ceil((y1 - y0) / 6));
  for (var a = x0; a <= x1; a += xstep) {
    s.appendChild(sv("line", {x1: X(a), x2: X(a), y1: mt, y2: mt + ph, stroke: "#eef1f4"}));
    s.appendChild(sv("text", {x: X(a), y: mt + ph + 13, "text-anchor": "middle", "font-size": "9.5"}, ["1e" + a]));
  }
  for (var b = y0; b <= y1; b += ystep) {
    s.appendChild(sv("line", {x1: ml, x2: ml + pw, y1: Y(b), y2: Y(b), stroke: "#eef1f4"}));
    s.appendChild(sv("text", {x: ml - 4, y: Y(b) + 3, "text-anchor": "end", "font-size": "9.5"}, ["1e" + b]));
  }
  s.appendChild(sv("text", {x: ml + pw / 2, y: mt + ph + 26, "text-anchor": "middle", "font-size": "10"}, ["step h"]));
  s.appendChild(sv("text", {x: 11, y: mt + ph / 2, "text-anchor": "middle", "font-size": "10", transform: "rotate(-90 11 " + (mt + ph / 2) + ")"},
                   ["|analytic \u2212 numeric|"]));
  series.forEach(function (se, k) {
    var col = COLORS[k % COLORS.length];
    var pts = se.pts.slice().sort(function (p, q) { return p[0] - q[0]; });
    var dstr = pts.map(function (p, i) { return (i ? "L" : "M") + X(Math.log10(p[0])).toFixed(1) + " " + Y(Math.log10(p[1])).toFixed(1); }).join(" ");
    s.appendChild(sv("path", {d: dstr, fill: "none", stroke: col, "stroke-width": "1.6", cls: "series"}));
    var tp = pts.filter(function (p) { return isNum(p[2]) && p[2] > 0; });
    if (tp.length > 1) {
      s.appendChild(sv("path", {d: tp.map(function (p, i) { return (i ? "L" : "M") + X(Math.log10(p[0])).toFixed(1) + " " + Y(Math.log10(p[2])).toFixed(1); }).join(" "),
                                fill: "none", stroke: col, "stroke-width": "1", "stroke-dasharray": "4 3", cls: "tol-curve"},
                      [sv("title", {text: se.name + ": tolerance at each step"})]));
    }
    pts.forEach(function (p) {
      s.appendChild(sv("circle", {cx: X(Math.log10(p[0])).toFixed(1), cy: Y(Math.log10(p[1])).toFixed(1), r: "2.4", fill: col},
                       [sv("title", {text: se.name + ": h=" + fmt(p[0]) + ", error=" + fmt(p[1])})]));
    });
    if (k < 4) {
      var ly = mt + ph + 40 + 14 * k;
      s.appendChild(sv("line", {x1: ml, x2: ml + 18, y1: ly - 4, y2: ly - 4, stroke: col, "stroke-width": "2"}));
      s.appendChild(sv("text", {x: ml + 24, y: ly, "font-size": "10.5"}, [se.name + (se.tol ? " \u2014 dashed: its tolerance" : "")]));
    }
  });
  return s;
}

/* ---------- boot ---------- */
window.gradcheckReport = {renderMs: null, parseMs: PARSE_MS, lastUpdateMs: null, sortBy: sortBy, setStatus: setStatus, setText: setText, toggle: toggle,
                          state: state, nChecks: CHECKS.length, openAtStart: OPEN_AT_START};
renderSummary();
buildHeader();
buildControls();
buildLegend();
update();
openFailures();
window.gradcheckReport.renderMs = performance.now() - T0;
document.body.setAttribute("data-rendered", "1");
})();
