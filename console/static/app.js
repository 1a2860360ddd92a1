// tapewatch console: the queue's live rows, select-all, pagination, ages, and the book replay.
// No framework and no CDN: this file ships in the package. Every request is same-origin.
"use strict";

function formatAge(ms) {
  const m = Math.floor(ms / 60000);
  if (m < 60) return m + " min";
  const h = Math.floor(m / 60);
  return h < 48 ? h + " h" : Math.floor(h / 24) + " d";
}

function refreshAges(root) {
  const now = Date.now();
  root.querySelectorAll("td.age[data-since]").forEach((td) => {
    td.textContent = formatAge(now - Number(td.dataset.since));
  });
}

function wireQueue() {
  const table = document.querySelector("table.queue");
  if (!table) return;
  const body = document.getElementById("queue-rows");
  const live = document.getElementById("live");
  const rowsUrl = table.dataset.rowsUrl;
  refreshAges(body);
  setInterval(() => refreshAges(body), 30000);
  document.getElementById("select-all").addEventListener("change", (e) => {
    body.querySelectorAll("input[name=alert_id]").forEach((box) => { box.checked = e.target.checked; });
  });
  body.addEventListener("click", (e) => {
    const link = e.target.closest("a.page");
    if (!link) return;
    e.preventDefault();
    const url = new URL(window.location.href);
    url.searchParams.set("page", link.dataset.page);
    window.location.assign(url.toString());
  });
  let pending = false;
  async function reload() {
    if (pending) return;
    pending = true;
    try {
      const checked = new Set([...body.querySelectorAll("input[name=alert_id]:checked")].map((b) => b.value));
      const known = new Set([...body.querySelectorAll("tr[data-alert-id]")].map((r) => r.dataset.alertId));
      const response = await fetch(rowsUrl, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!response.ok) return;
      body.innerHTML = await response.text();
      body.querySelectorAll("tr[data-alert-id]").forEach((row) => {
        if (!known.has(row.dataset.alertId)) row.classList.add("fresh");
        const box = row.querySelector("input[name=alert_id]");
        if (box && checked.has(box.value)) box.checked = true;
      });
      refreshAges(body);
      document.body.dataset.queueRefreshed = String(Date.now());
    } finally {
      pending = false;
    }
  }
  const events = new EventSource("/events");
  events.addEventListener("open", () => { live.classList.remove("off"); live.textContent = "live"; });
  events.addEventListener("error", () => { live.classList.add("off"); live.textContent = "reconnecting"; });
  events.addEventListener("changed", reload);
  // the session ended (signed out, disabled, expired): the stream closes and the page goes to the sign-in
  events.addEventListener("ended", () => { events.close(); window.location.reload(); });
}

// the firm's orders resting at ``ts``: each order's newest report at or before it, still open with a price
const CLOSED = ["canceled", "expired", "rejected"];
function restingAt(orders, ts) {
  const newest = new Map();
  for (const o of orders) { if (o.ts > ts) break; newest.set(o.order_id, o); }
  return [...newest.values()].filter((o) => o.leaves_qty > 0 && o.price !== null && !CLOSED.includes(o.exec_type));
}

function markMine(td, level, side, resting) {
  if (!level) return;
  const mine = resting.filter((o) => o.side === side && Math.abs(o.price - level[0]) < 1e-9);
  if (!mine.length) return;
  td.classList.add("mine");
  td.title = mine.map((o) => `${o.account}: ${o.leaves_qty.toLocaleString()} (${o.order_id})`).join("\n");
  td.append(" ◆");
}

function orderLine(o) {
  const li = document.createElement("li");
  const at = new Date(o.ts).toISOString().slice(11, 23);
  const price = o.price === null ? "" : ` @ ${o.price}`;
  const filled = o.exec_type === "trade" ? ` · filled ${o.last_qty.toLocaleString()} @ ${o.last_price}` : "";
  li.textContent = `${at} ${o.account} ${o.order_id} ${o.exec_type} ${o.side}${price}${filled} · ${o.leaves_qty.toLocaleString()} left`;
  li.className = `exec-${o.exec_type}`;
  return li;
}

function ladderRow(bid, ask, biggest) {
  const cell = (text, cls) => { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td; };
  const bar = (size, cls) => {
    const td = cell("", cls);
    if (size > 0) {
      const span = document.createElement("span");
      span.className = "bar";
      span.style.width = Math.max(2, Math.round(80 * size / biggest)) + "px";
      td.append(span, " " + size.toLocaleString());
    }
    return td;
  };
  const tr = document.createElement("tr");
  tr.append(bar(bid ? bid[1] : 0, "bid"), cell(bid ? bid[0] : "", "bid"), cell(ask ? ask[0] : "", "ask"), bar(ask ? ask[1] : 0, "ask"));
  return tr;
}

async function wireReplay() {
  const root = document.getElementById("replay");
  if (!root) return;
  const response = await fetch(root.dataset.url, { credentials: "same-origin" });
  if (!response.ok) return;
  const data = await response.json();
  const snaps = data.snapshots;
  const slider = root.querySelector("input[type=range]");
  const time = root.querySelector(".replay-time");
  const body = root.querySelector(".ladder tbody");
  const orders = data.orders || [];
  const mineList = root.querySelector(".replay-orders");
  if (!snaps.length) { time.textContent = "no stored snapshots in this window"; return; }
  slider.max = String(snaps.length - 1);
  let at = snaps.findIndex((s) => s.ts >= data.episode[0]);
  if (at < 0) at = 0;
  function show(i) {
    at = Math.max(0, Math.min(snaps.length - 1, i));
    slider.value = String(at);
    const s = snaps[at];
    const inEpisode = s.ts >= data.episode[0] && s.ts <= data.episode[1];
    time.textContent = new Date(s.ts).toISOString().replace("T", " ").slice(0, 23) + " UTC" + (inEpisode ? " · in the episode" : "") + ` · ${at + 1}/${snaps.length}`;
    const biggest = Math.max(1, ...s.bids.map((l) => l[1]), ...s.asks.map((l) => l[1]));
    body.replaceChildren();
    const resting = restingAt(orders, s.ts);
    for (let level = 0; level < 5; level++) {
      const row = ladderRow(s.bids[level], s.asks[level], biggest);
      markMine(row.children[1], s.bids[level], "BUY", resting);
      markMine(row.children[2], s.asks[level], "SELL", resting);
      body.append(row);
    }
    if (mineList) {
      const since = at > 0 ? snaps[at - 1].ts : -Infinity;
      mineList.replaceChildren(...orders.filter((o) => o.ts > since && o.ts <= s.ts).map(orderLine));
    }
    root.dataset.shown = String(at);
  }
  let timer = null;
  root.querySelectorAll("button[data-step]").forEach((b) => b.addEventListener("click", () => show(at + Number(b.dataset.step))));
  slider.addEventListener("input", () => show(Number(slider.value)));
  const play = root.querySelector("button[data-play]");
  play.addEventListener("click", () => {
    if (timer) { clearInterval(timer); timer = null; play.textContent = "Play"; return; }
    play.textContent = "Pause";
    timer = setInterval(() => { if (at >= snaps.length - 1) play.click(); else show(at + 1); }, 200);
  });
  show(at);
}

document.addEventListener("DOMContentLoaded", () => {
  wireQueue();
  wireReplay();
});
