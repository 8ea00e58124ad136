// IEM-DCR twin dashboard: one card per meter, live from /api/events (Server-Sent Events).
// Plain JavaScript, no build step, no dependencies. Every text from the twin goes in via textContent.
"use strict";

const TOKEN_KEY = "iemdcr-control-token";
const REQUESTS_SHOWN = 8;
const REQUESTS_KEPT = 50; // kept per meter, so hiding the polls still leaves something to show
const HIDE_POLLS_KEY = "iemdcr-hide-polls";
const REFRESH_DEBOUNCE_MS = 80;

const meters = new Map(); // serial -> {card, snapshot, requests, refreshTimer, loadFilled}
let catalogue = [];
let source = null;
let reconnectTimer = null;
let generation = 0; // bumps on every full reload, so stale responses are ignored

class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

// ---- token and HTTP ---------------------------------------------------------------------------------------

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function showTokenForm(reason) {
  const form = document.getElementById("token-form");
  form.hidden = false;
  if (reason) setBanner(reason);
  document.getElementById("token-input").focus();
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (response.status === 401) {
    showTokenForm("The control API needs a token.");
  }
  if (!response.ok) {
    throw new ApiError(response.status, data && data.error, data && data.message);
  }
  return data;
}

// ---- formatting -------------------------------------------------------------------------------------------

function fixed(value, digits) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "–";
}

function watts(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "–";
  return Math.abs(value) >= 1000 ? `${(value / 1000).toFixed(2)} kW` : `${value.toFixed(0)} W`;
}

function kwhFromText(text) {
  // "00000012.800" -> "12.800 kWh" (the meter's own truncated value, never re-rounded)
  if (typeof text !== "string") return "–";
  const trimmed = text.replace(/^0+(?=\d)/, "");
  return `${trimmed} kWh`;
}

function kwhFromMwh(mwh) {
  // integer mWh -> kWh with 3 decimals, truncated like the meter (1 kWh = 1,000,000 mWh)
  if (typeof mwh !== "number") return "–";
  const sign = mwh < 0 ? "-" : "";
  const wh = Math.floor(Math.abs(mwh) / 1000);
  return `${sign}${Math.floor(wh / 1000)}.${String(wh % 1000).padStart(3, "0")} kWh`;
}

function clockTime(wallSeconds) {
  const d = new Date(wallSeconds * 1000);
  return d.toLocaleTimeString([], { hour12: false });
}

// ---- cards ------------------------------------------------------------------------------------------------

function field(card, name) {
  return card.querySelector(`[data-field="${name}"]`);
}

function setText(card, name, text) {
  const el = field(card, name);
  if (el.textContent !== text) el.textContent = text;
}

function setBadge(card, name, text, tone) {
  const el = field(card, name);
  el.textContent = text;
  el.className = `badge ${tone || ""}`.trim();
}

function showMessage(card, text) {
  const el = field(card, "message");
  el.textContent = text || "";
  el.hidden = !text;
}

function makeCard(serial) {
  const template = document.getElementById("card-template");
  const card = template.content.firstElementChild.cloneNode(true);
  card.dataset.serial = serial;
  field(card, "serial").textContent = serial;

  card.querySelector('[data-action="set-load"]').addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const body = {};
    for (const key of ["current_A", "voltage_V", "ramp_s"]) {
      const raw = form.elements[key].value.trim();
      if (raw !== "") body[key] = Number(raw);
    }
    control(serial, event.submitter || form.querySelector("button"), "PUT", "load", body);
  });
  card.querySelector('[data-action="power-cycle"]').addEventListener("click", (event) => {
    control(serial, event.currentTarget, "POST", "power-cycle", {});
  });
  card.querySelector('[data-action="power-toggle"]').addEventListener("click", (event) => {
    const m = meters.get(serial);
    const on = !(m && m.snapshot && m.snapshot.powered);
    control(serial, event.currentTarget, "POST", "power", { on });
  });

  const faults = field(card, "faults");
  for (const fault of catalogue) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "fault";
    button.dataset.fault = fault.name;
    button.textContent = fault.name.replaceAll("_", " ");
    button.title = `${fault.description} (ST ${fault.ST}, XC ${fault.XC}) — click to raise or clear`;
    button.setAttribute("aria-pressed", "false");
    button.addEventListener("click", () => {
      const active = button.getAttribute("aria-pressed") === "true";
      control(serial, button, active ? "DELETE" : "PUT", `faults/${encodeURIComponent(fault.name)}`);
    });
    faults.appendChild(button);
  }
  return card;
}

async function control(serial, button, method, tail, body) {
  const card = meters.get(serial).card;
  button.disabled = true;
  try {
    await api(method, `/api/meters/${encodeURIComponent(serial)}/${tail}`, body);
    showMessage(card, "");
    scheduleRefresh(serial, 0);
  } catch (error) {
    showMessage(card, `${method} ${tail}: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

function renderValues(card, s) {
  const e = s.electrical || {};
  const r = s.registers || {};
  setText(card, "current", `${fixed(e.current_A, 2)} A`);
  setText(card, "voltage", `${fixed(e.voltage_V, 1)} V`);
  setText(card, "power", watts(e.power_W));
  setText(card, "import", kwhFromText(r.import_kWh));
  setText(card, "export", kwhFromText(r.export_kWh));
  setText(card, "tx-energy", kwhFromMwh(r.transaction_import_mWh));
  setText(card, "time", s.powered && s.clock && s.clock.time ? s.clock.time : "–");

  const lcd = field(card, "lcd");
  const lines = s.powered ? s.display || [] : ["", ""];
  setText(card, "lcd-1", lines[0] || "");
  setText(card, "lcd-2", lines[1] || "");
  lcd.classList.toggle("off", !s.powered);
  lcd.classList.toggle("error", Boolean(s.powered && lines[0] === "Error"));
}

function renderMeter(serial) {
  const m = meters.get(serial);
  const s = m.snapshot;
  if (!s) return;
  const card = m.card;
  setText(card, "model", s.model || "");
  const link = field(card, "url");
  if (s.url && link.textContent !== s.url) {
    link.textContent = s.url;
    link.href = `${s.url}/counter/v1/ocmf/metervalue`;
  }
  card.classList.toggle("is-off", !s.powered);
  setBadge(card, "power-badge", s.powered ? "on" : "off", s.powered ? "ok" : "bad");
  if (s.transaction) {
    setBadge(card, "tx-badge", "transaction", "live");
  } else {
    setBadge(card, "tx-badge", "idle", "");
  }
  const status = s.status || {};
  const faulty = (s.faults || []).length > 0;
  setBadge(card, "status-badge", `ST ${status.ST || "?"}${status.EF ? ` · EF ${status.EF}` : ""}`, faulty ? "bad" : "ok");
  field(card, "status-badge").title = `XC ${status.XC || ""} · XS ${status.XS || ""}`;

  const gw = s.gw || {};
  setText(card, "gw", gw.written ? `${gw.CT} ${gw.CI}` : "not set (POST gw)");
  renderValues(card, s);

  const active = new Set(s.faults || []);
  for (const button of field(card, "faults").querySelectorAll("button")) {
    button.setAttribute("aria-pressed", active.has(button.dataset.fault) ? "true" : "false");
  }
  card.querySelector('[data-action="power-toggle"]').textContent = s.powered ? "Power off" : "Power on";

  // Fill the load form once from the meter's targets; later the user's typing wins.
  if (!m.loadFilled) {
    const form = card.querySelector('[data-action="set-load"]');
    const e = s.electrical || {};
    form.elements.current_A.value = String(e.current_A ?? 0);
    form.elements.voltage_V.value = String(e.voltage_V ?? 0);
    m.loadFilled = true;
  }
}

function renderRequests(serial) {
  const m = meters.get(serial);
  const list = field(m.card, "requests");
  list.replaceChildren();
  const hidePolls = localStorage.getItem(HIDE_POLLS_KEY) === "1";
  const shown = m.requests.filter((e) => !(hidePolls && e.method === "GET" && /\/metervalue$/.test(e.path)));
  if (shown.length === 0) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = hidePolls && m.requests.length ? "only metervalue polls" : "no meter-API requests yet";
    list.appendChild(li);
    return;
  }
  for (const entry of shown.slice(-REQUESTS_SHOWN).reverse()) {
    const li = document.createElement("li");
    const node = String(entry.path || "").replace(/^\/counter\/v(\d)\/ocmf\//, (_, v) => (v === "1" ? "" : `v${v}/`));
    const cells = [
      ["when", clockTime(entry.wall_time)],
      ["method", entry.method],
      ["path", node || entry.path],
      [`status s${String(entry.status)[0]}`, entry.error ? `${entry.status} ${entry.error}` : String(entry.status)],
    ];
    for (const [cls, text] of cells) {
      const span = document.createElement("span");
      span.className = cls;
      span.textContent = text;
      li.appendChild(span);
    }
    li.title = entry.body === null || entry.body === undefined ? entry.path : `${entry.path} ${JSON.stringify(entry.body)}`;
    list.appendChild(li);
  }
}

async function refreshMeter(serial) {
  const m = meters.get(serial);
  if (!m) return;
  const gen = generation;
  try {
    const snapshot = await api("GET", `/api/meters/${encodeURIComponent(serial)}`);
    if (gen !== generation || !meters.has(serial)) return;
    m.snapshot = snapshot;
    renderMeter(serial);
  } catch (error) {
    showMessage(m.card, `could not load state: ${error.message}`);
  }
}

function scheduleRefresh(serial, delay = REFRESH_DEBOUNCE_MS) {
  const m = meters.get(serial);
  if (!m) return;
  clearTimeout(m.refreshTimer);
  m.refreshTimer = setTimeout(() => refreshMeter(serial), delay);
}

async function loadRequests(serial) {
  const path = `/api/meters/${encodeURIComponent(serial)}/journal`;
  const head = await api("GET", `${path}?limit=0`);
  const since = Math.max(0, head.last_seq - REQUESTS_KEPT);
  const page = await api("GET", `${path}?since=${since}&limit=${REQUESTS_KEPT}`);
  return page.entries;
}

// ---- full load and the event stream -------------------------------------------------------------------------

function setBanner(text) {
  const banner = document.getElementById("banner");
  banner.textContent = text || "";
  banner.hidden = !text;
}

function setConnection(state, text) {
  const el = document.getElementById("conn");
  el.className = `conn conn-${state}`;
  document.getElementById("conn-text").textContent = text;
  document.body.dataset.connection = state;
}

async function loadAll() {
  const gen = ++generation;
  const [list, faults, clock] = await Promise.all([
    api("GET", "/api/meters"),
    api("GET", "/api/faults"),
    api("GET", "/api/clock"),
  ]);
  if (gen !== generation) return;
  catalogue = faults.faults;
  document.getElementById("clock").textContent =
    clock.mode === "virtual" ? `virtual clock ×${clock.rate}` : "real clock";
  const container = document.getElementById("meters");
  const wanted = list.meters.map((item) => item.serial);
  for (const serial of [...meters.keys()]) {
    if (!wanted.includes(serial)) {
      meters.get(serial).card.remove();
      meters.delete(serial);
    }
  }
  for (const serial of wanted) {
    if (!meters.has(serial)) {
      const card = makeCard(serial);
      container.appendChild(card);
      meters.set(serial, { card, snapshot: null, requests: [], refreshTimer: null, loadFilled: false });
    }
  }
  await Promise.all(
    wanted.map(async (serial) => {
      const [snapshot, requests] = await Promise.all([
        api("GET", `/api/meters/${encodeURIComponent(serial)}`),
        loadRequests(serial),
      ]);
      if (gen !== generation) return;
      const m = meters.get(serial);
      m.snapshot = snapshot;
      m.requests = requests;
      renderMeter(serial);
      renderRequests(serial);
    }),
  );
  setBanner("");
  document.body.dataset.loaded = "true";
}

function onEvent(event) {
  const m = event.serial ? meters.get(event.serial) : null;
  switch (event.type) {
    case "hello": {
      const known = [...meters.keys()].sort().join(",");
      if (known !== [...event.meters].sort().join(",") || document.body.dataset.loaded !== "true") {
        reload();
      } else {
        for (const serial of meters.keys()) scheduleRefresh(serial); // catch up on anything missed
      }
      break;
    }
    case "state":
      if (m) scheduleRefresh(event.serial);
      break;
    case "values":
      if (m && m.snapshot) {
        Object.assign(m.snapshot, event.data);
        renderValues(m.card, m.snapshot);
      }
      break;
    case "request":
      if (m) {
        m.requests.push(event.data);
        if (m.requests.length > REQUESTS_KEPT) m.requests.splice(0, m.requests.length - REQUESTS_KEPT);
        renderRequests(event.serial);
      }
      break;
    case "dropped":
      reload(); // this tab fell behind and lost events: start again from full state
      break;
    default:
      break;
  }
}

function connect() {
  clearTimeout(reconnectTimer);
  if (source) source.close();
  const url = token() ? `/api/events?token=${encodeURIComponent(token())}` : "/api/events";
  setConnection("connecting", "connecting");
  source = new EventSource(url);
  source.onopen = () => setConnection("live", "live");
  source.onmessage = (message) => {
    try {
      onEvent(JSON.parse(message.data));
    } catch (error) {
      console.warn("bad event", error);
    }
  };
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) {
      // refused (e.g. 401) or the server went away: find out why, then try again
      setConnection("offline", "offline");
      api("GET", "/api/meters").catch(() => {});
      reconnectTimer = setTimeout(connect, 3000);
    } else {
      setConnection("connecting", "reconnecting");
    }
  };
}

async function reload() {
  try {
    await loadAll();
  } catch (error) {
    setBanner(error.status === 401 ? "The control API needs a token." : `Cannot reach the twin: ${error.message}`);
  }
}

function setupToken() {
  const form = document.getElementById("token-form");
  const input = document.getElementById("token-input");
  document.getElementById("token-button").addEventListener("click", () => {
    form.hidden = !form.hidden;
    if (!form.hidden) input.focus();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    input.value = "";
    form.hidden = true;
    reload().then(connect);
  });
  document.getElementById("token-clear").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    input.value = "";
  });
}

function setupPollFilter() {
  const box = document.getElementById("hide-polls");
  box.checked = localStorage.getItem(HIDE_POLLS_KEY) === "1";
  box.addEventListener("change", () => {
    localStorage.setItem(HIDE_POLLS_KEY, box.checked ? "1" : "0");
    for (const serial of meters.keys()) renderRequests(serial);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setupToken();
  setupPollFilter();
  reload().then(connect);
});
