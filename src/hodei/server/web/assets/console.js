// The Hodei console: a list of jobs, a page per job with its live output, the workers.
//
// Everything shown comes from the JSON API under /api/v1 (the same objects as
// `hodei ... -o json`). Job data is put on the page as text (textContent), never as
// markup; only the colour renderer's output, which escapes HTML itself, goes in as HTML.
// Authentication is an HttpOnly cookie set by POST /api/v1/session: this script never
// sees the token after the login form sends it.

import { AnsiUp } from "./vendor/ansi_up/ansi_up.js";
import { StreamLines, displayLine } from "./terminal.js";

const STATES = ["QUEUED", "STARTING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"];
const LIST_REFRESH_MS = 2000;
const JOB_REFRESH_MS = 1000;
const LOG_POLL_MS = 500;
const LOG_PAGE_BYTES = 256 * 1024;
const LOG_SCREEN_BYTES = 2 * 1024 * 1024; // loaded before asking the user for more

const main = document.getElementById("main");
let timers = [];
let generation = 0; // bumped on every navigation; stale callbacks check it

class Unauthenticated extends Error {}

function later(fn, ms) {
  const id = setTimeout(fn, ms);
  timers.push(id);
}

async function api(path, options = {}) {
  const init = { credentials: "same-origin", headers: { Accept: "application/json" }, ...options };
  if (init.body !== undefined) init.headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    setConnection("control plane unreachable; retrying");
    throw err;
  }
  setConnection(null);
  if (response.status === 401) throw new Unauthenticated();
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function setConnection(message) {
  const el = document.getElementById("connection");
  el.hidden = !message;
  el.textContent = message || "";
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function stateBadge(state) {
  return el("span", { class: `state state-${state}`, "data-state": state }, state);
}

function relative(iso, now = Date.now()) {
  if (!iso) return "-";
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  return `${span(seconds)} ago`;
}

function span(seconds) {
  if (seconds >= 86400) return `${Math.floor(seconds / 86400)}d`;
  if (seconds >= 3600) return `${Math.floor(seconds / 3600)}h`;
  if (seconds >= 60) return `${Math.floor(seconds / 60)}m${seconds % 60 ? ` ${seconds % 60}s` : ""}`;
  return `${seconds}s`;
}

function duration(job, now = Date.now()) {
  if (!job.started_at) return "-";
  const end = job.finished_at ? Date.parse(job.finished_at) : now;
  return span(Math.max(0, Math.round((end - Date.parse(job.started_at)) / 1000)));
}

function commandText(job) {
  return job.command_line; // quoted as a shell would need it (hodei.api.shapes)
}

function exitText(job) {
  const code = job.run_exit_code ?? job.exit_code;
  return code === null || code === undefined ? "-" : String(code);
}

function reasonText(job) {
  return job.reason || job.waiting_reason || "";
}

// ---- login --------------------------------------------------------------------------

function showLogin() {
  document.getElementById("logout").hidden = true;
  main.replaceChildren(document.getElementById("login-template").content.cloneNode(true));
  const form = document.getElementById("login-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = document.getElementById("login-error");
    error.textContent = "";
    try {
      await api("/api/v1/session", {
        method: "POST",
        body: JSON.stringify({ token: document.getElementById("token").value }),
      });
      route();
    } catch (err) {
      error.textContent = err instanceof Unauthenticated ? "Wrong API token." : String(err.message);
    }
  });
  document.getElementById("token").focus();
}

// ---- jobs list ----------------------------------------------------------------------

function listQuery(params) {
  const query = new URLSearchParams();
  if (params.get("state")) query.append("state", params.get("state"));
  for (const selector of (params.get("label") || "").split(",")) {
    if (selector.trim()) query.append("label", selector.trim());
  }
  if (params.get("after")) query.append("after", params.get("after"));
  query.append("limit", "50");
  return query;
}

function jobsView(params, gen) {
  const state = el("select", { id: "filter-state", name: "state" },
    el("option", { value: "" }, "all states"),
    ...STATES.map((s) => el("option", { value: s }, s)));
  state.value = params.get("state") || "";
  const label = el("input", { id: "filter-label", name: "label", placeholder: "team=ml,env=prod",
    value: params.get("label") || "" });
  const apply = (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    if (state.value) next.set("state", state.value);
    if (label.value.trim()) next.set("label", label.value.trim());
    location.hash = `#/?${next}`;
  };
  const form = el("form", { class: "filters", onsubmit: apply },
    el("label", {}, "State", state), el("label", {}, "Labels", label),
    el("button", { type: "submit" }, "Filter"));
  const body = el("tbody", { id: "jobs" });
  const table = el("table", {},
    el("thead", {}, el("tr", {}, ...["ID", "STATE", "COMMAND", "PROVIDER", "AGE", "DURATION", "EXIT",
      "REASON"].map((h) => el("th", {}, h)))), body);
  const pager = el("div", { class: "pager" });
  const error = el("p", { class: "error", role: "alert" });
  main.replaceChildren(el("h1", {}, "Jobs"), form, error, table, pager);
  state.addEventListener("change", apply);

  const refresh = async () => {
    if (gen !== generation) return;
    try {
      const page = await api(`/api/v1/jobs?${listQuery(params)}`);
      if (gen !== generation) return;
      error.textContent = "";
      body.replaceChildren(...page.items.map(jobRow));
      if (!page.items.length) body.append(el("tr", {}, el("td", { colspan: 8, class: "muted" }, "No jobs.")));
      pager.replaceChildren();
      if (params.get("after")) {
        const first = new URLSearchParams(params); first.delete("after");
        pager.append(el("a", { href: `#/?${first}` }, "← Newest"));
      }
      if (page.next) {
        const next = new URLSearchParams(params); next.set("after", page.next);
        pager.append(el("a", { href: `#/?${next}`, id: "older" }, "Older →"));
      }
    } catch (err) {
      if (err instanceof Unauthenticated) return showLogin();
      error.textContent = String(err.message);
    }
    later(refresh, LIST_REFRESH_MS);
  };
  refresh();
}

function jobRow(job) {
  return el("tr", { "data-job": job.id },
    el("td", {}, el("a", { href: `#/jobs/${encodeURIComponent(job.id)}` }, job.id)),
    el("td", {}, stateBadge(job.state)),
    el("td", { class: "command", title: commandText(job) }, commandText(job)),
    el("td", {}, job.provider || "-"),
    el("td", { title: job.created_at }, relative(job.created_at)),
    el("td", { class: "num" }, duration(job)),
    el("td", { class: "num exit" }, exitText(job)),
    el("td", { class: "reason" }, reasonText(job)));
}

// ---- one job ------------------------------------------------------------------------

function specList(job) {
  const rows = [
    ["Command", commandText(job)],
    ["Image", job.image || "(default worker image)"],
    ["Resources", Object.entries(job.resources || {}).filter(([, v]) => v)
      .map(([k, v]) => `${k}=${v}`).join(" ") || "(defaults)"],
    ["Labels", Object.entries(job.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ") || "-"],
    ["Profile", job.profile || "-"],
    ["Env", (job.env_names || []).join(", ") || "-"],
    ["Secret env", Object.entries(job.secret_env || {}).map(([k, v]) => `${k}=${v}`).join(", ") || "-"],
    ["Timeout", job.timeout_seconds ? `${job.timeout_seconds}s` : "-"],
    ["Provider", job.provider || "-"],
    ["Created", job.created_at || "-"],
    ["Started", job.started_at || "-"],
    ["Finished", job.finished_at || "-"],
  ];
  return el("dl", { class: "spec" }, ...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

function attemptsTable(job, workers) {
  // Ended attempts come from the job; the current one from its worker record.
  const attempts = (job.attempts || []).map((a) => ({
    number: a.number, worker: a.worker_id, message: a.message,
    reason: a.disruption ? `${a.reason} (platform; retried)` : a.reason,
  }));
  const known = new Set(attempts.map((a) => a.worker));
  for (const w of workers) {
    if (!known.has(w.id)) attempts.push({ number: w.attempt ?? "", worker: w.id, reason: w.reason, message: w.message });
  }
  const byWorker = new Map(workers.map((w) => [w.id, w]));
  return el("table", { id: "attempts" },
    el("thead", {}, el("tr", {}, ...["ATTEMPT", "WORKER", "POD/PROCESS", "PHASE", "REASON", "MESSAGE"]
      .map((h) => el("th", {}, h)))),
    el("tbody", {}, ...attempts.map((a) => {
      const w = byWorker.get(a.worker) || {};
      return el("tr", {}, el("td", {}, a.number), el("td", {}, a.worker || "-"), el("td", {}, w.name || "-"),
        el("td", {}, w.state || "-"), el("td", {}, a.reason || "-"), el("td", {}, a.message || "-"));
    })));
}

class LogView {
  constructor(jobId, gen) {
    this.jobId = jobId;
    this.gen = gen;
    this.pre = el("pre", { class: "log", id: "log" });
    this.status = el("p", { class: "muted", id: "log-status" });
    this.more = el("button", { type: "button", id: "log-more", hidden: "" }, "Show more output");
    this.more.addEventListener("click", () => { this.budget += LOG_SCREEN_BYTES; this.more.hidden = true; this.load(); });
    this.after = 0;
    this.budget = LOG_SCREEN_BYTES;
    this.streams = {};
  }

  stream(name) {
    if (!this.streams[name]) {
      const colours = new AnsiUp();
      colours.use_classes = true;
      this.streams[name] = { lines: new StreamLines(), colours, partialEl: null };
    }
    return this.streams[name];
  }

  renderLine(target, html, stream) {
    target.className = `line ${stream}`;
    target.innerHTML = html; // ansi_up escapes the text; see the module comment
  }

  append(chunk) {
    const s = this.stream(chunk.stream);
    const bytes = Uint8Array.from(atob(chunk.data), (c) => c.charCodeAt(0));
    const { lines, partial } = s.lines.push(bytes);
    for (const line of lines) {
      const target = s.partialEl || this.pre.appendChild(el("span"));
      s.partialEl = null;
      this.renderLine(target, s.colours.ansi_to_html(displayLine(line)) || "", chunk.stream);
    }
    if (partial) {
      // An unfinished line is drawn with throwaway colour state; it is drawn again,
      // with the stream's own state, once its newline arrives.
      const scratch = new AnsiUp();
      scratch.use_classes = true;
      s.partialEl = s.partialEl || this.pre.appendChild(el("span"));
      this.renderLine(s.partialEl, scratch.ansi_to_html(displayLine(partial)), chunk.stream);
    }
    this.budget -= bytes.length;
  }

  async load() {
    if (this.gen !== generation) return;
    try {
      const page = await api(`/api/v1/jobs/${encodeURIComponent(this.jobId)}/logs?after=${this.after}&limit_bytes=${LOG_PAGE_BYTES}`);
      if (this.gen !== generation) return;
      const stick = this.pre.scrollTop + this.pre.clientHeight >= this.pre.scrollHeight - 4;
      for (const chunk of page.chunks) this.append(chunk);
      this.after = page.next;
      if (stick) this.pre.scrollTop = this.pre.scrollHeight;
      if (page.more && this.budget <= 0) {
        this.status.textContent = "Output continues; it is loaded page by page.";
        this.more.hidden = false;
        return;
      }
      if (page.more) return this.load();
      if (page.ended) {
        this.status.textContent = this.pre.childElementCount ? "End of output." : "The job printed nothing.";
        return;
      }
      this.status.textContent = "Following output…";
    } catch (err) {
      if (err instanceof Unauthenticated) return showLogin();
      this.status.textContent = String(err.message);
    }
    later(() => this.load(), LOG_POLL_MS);
  }
}

function jobView(jobId, gen) {
  const title = el("h1", {}, "Job ", el("code", {}, jobId), " ");
  const badge = el("span", { id: "job-state" });
  title.append(badge);
  const cancel = el("button", { type: "button", class: "danger", id: "cancel" }, "Cancel");
  const download = el("a", { href: `/api/v1/jobs/${encodeURIComponent(jobId)}/logs/raw`, id: "download" },
    "Download raw log");
  const summary = el("p", { id: "job-summary" });
  const waiting = el("p", { class: "waiting", id: "waiting", hidden: "" });
  const spec = el("div", { id: "spec" });
  const attempts = el("div");
  const error = el("p", { class: "error", role: "alert" });
  const logs = new LogView(jobId, gen);
  main.replaceChildren(title, el("div", { class: "actions" }, cancel, download), error, summary, waiting,
    el("h2", {}, "Output"), logs.pre, logs.status, logs.more,
    el("h2", {}, "Spec"), spec, el("h2", {}, "Attempts"), attempts);
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      await api(`/api/v1/jobs/${encodeURIComponent(jobId)}/cancel`, { method: "POST", body: "{}" });
    } catch (err) {
      error.textContent = String(err.message);
    }
  });

  const refresh = async () => {
    if (gen !== generation) return;
    try {
      const [job, workers] = await Promise.all([
        api(`/api/v1/jobs/${encodeURIComponent(jobId)}`),
        api(`/api/v1/workers?job=${encodeURIComponent(jobId)}`),
      ]);
      if (gen !== generation) return;
      error.textContent = "";
      badge.replaceChildren(stateBadge(job.state));
      const terminal = ["SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"].includes(job.state);
      cancel.disabled = terminal;
      summary.textContent = terminal
        ? `Exit ${exitText(job)}${job.reason ? ` · ${job.reason}` : ""}${job.message ? `: ${job.message}` : ""}`
        : `Attempt ${job.attempt || 1} · running for ${duration(job)}`;
      waiting.hidden = !job.waiting_reason || terminal;
      waiting.textContent = job.waiting_reason ? `Waiting: ${job.waiting_reason}` : "";
      spec.replaceChildren(specList(job));
      attempts.replaceChildren(attemptsTable(job, workers.items));
      if (terminal) return;
    } catch (err) {
      if (err instanceof Unauthenticated) return showLogin();
      error.textContent = String(err.message);
    }
    later(refresh, JOB_REFRESH_MS);
  };
  refresh();
  logs.load();
}

// ---- workers ------------------------------------------------------------------------

function workersView(gen) {
  const body = el("tbody", { id: "workers" });
  const error = el("p", { class: "error", role: "alert" });
  main.replaceChildren(el("h1", {}, "Workers"), error, el("table", {},
    el("thead", {}, el("tr", {}, ...["ID", "JOB", "PROVIDER", "POD/PROCESS", "PHASE", "AGE", "DIAGNOSIS"]
      .map((h) => el("th", {}, h)))), body));
  const refresh = async () => {
    if (gen !== generation) return;
    try {
      const page = await api("/api/v1/workers");
      if (gen !== generation) return;
      body.replaceChildren(...page.items.map((w) => el("tr", {},
        el("td", {}, w.id),
        el("td", {}, el("a", { href: `#/jobs/${encodeURIComponent(w.job_id)}` }, w.job_id)),
        el("td", {}, w.provider), el("td", {}, w.name || "-"), el("td", {}, w.state),
        el("td", {}, relative(w.created_at)),
        el("td", {}, [w.reason, w.message].filter(Boolean).join(": ")))));
      if (!page.items.length) body.append(el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No workers.")));
    } catch (err) {
      if (err instanceof Unauthenticated) return showLogin();
      error.textContent = String(err.message);
    }
    later(refresh, LIST_REFRESH_MS);
  };
  refresh();
}

// ---- routing ------------------------------------------------------------------------

async function route() {
  generation += 1;
  timers.forEach(clearTimeout);
  timers = [];
  const gen = generation;
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = hash.split("?");
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.classList.toggle("active", link.dataset.nav === (path.startsWith("/workers") ? "workers" : "jobs"));
  }
  try {
    const session = await api("/api/v1/session");
    document.getElementById("logout").hidden = !session.auth_required;
  } catch (err) {
    if (err instanceof Unauthenticated) return showLogin();
    main.replaceChildren(el("p", { class: "error" }, String(err.message)));
    return;
  }
  if (gen !== generation) return;
  const match = path.match(/^\/jobs\/(.+)$/);
  if (match) jobView(decodeURIComponent(match[1]), gen);
  else if (path.startsWith("/workers")) workersView(gen);
  else jobsView(new URLSearchParams(query), gen);
}

document.getElementById("logout").addEventListener("click", async () => {
  await api("/api/v1/session", { method: "DELETE" }).catch(() => {});
  showLogin();
});
window.addEventListener("hashchange", route);
route();
