// The build page, live. The event log grows from the build's SSE stream; everything else
// (nodes, score, findings, fixes, agent runs) is re-rendered by the server after each event.
//
// EventSource reconnects by itself after a dropped connection and sends Last-Event-ID, so
// the server resumes after the last event received; a stream the browser gave up on
// (an HTTP error) is opened again here, from the last event shown.
"use strict";

(() => {
  const root = document.getElementById("build");
  if (!root) return;
  const log = document.getElementById("event-log");
  const count = document.getElementById("event-count");
  const state = document.getElementById("stream-state");
  const TERMINAL = new Set(["BUILD_SUCCEEDED", "BUILD_FAILED", "BUILD_ABORTED"]);
  const LABELS = {
    connecting: "connecting…",
    live: "live",
    reconnecting: "reconnecting…",
    finished: "build finished",
  };
  const DATA_LIMIT = 300; // as the server clips an event's data (bot/build_results.py)
  const types = root.dataset.eventTypes.split(" ");
  let lastSeq = Number(root.dataset.lastSeq);
  let duplicates = 0;
  let source = null;
  let retryDelay = 1000;
  let refreshTimer = null;
  let refreshing = false;
  let refreshAgain = false;

  function setStream(name) {
    root.dataset.stream = name;
    state.textContent = LABELS[name];
  }

  function cell(tag, className, text) {
    const element = document.createElement(tag);
    if (className) element.className = className;
    element.textContent = text;
    return element;
  }

  function append(event) {
    // Each event once: one the log already shows is counted (the tests read it) and dropped.
    if (event.seq <= lastSeq) {
      duplicates += 1;
      root.dataset.duplicates = String(duplicates);
      return;
    }
    lastSeq = event.seq;
    root.dataset.lastSeq = String(lastSeq);
    const data = Object.keys(event.data || {}).length ? JSON.stringify(event.data) : "";
    const item = document.createElement("li");
    item.dataset.seq = String(event.seq);
    item.dataset.type = event.type;
    item.append(
      cell("span", "seq", String(event.seq)),
      cell("time", "", event.at.slice(11, 19)),
      cell("span", "type", event.type),
      cell("span", "task", event.task || ""),
      cell("code", "data", data.length > DATA_LIMIT ? data.slice(0, DATA_LIMIT - 1) + "…" : data),
    );
    log.append(item);
    count.textContent = String(log.children.length);
  }

  function onEvent(message) {
    const event = JSON.parse(message.data);
    append(event);
    scheduleRefresh();
    if (TERMINAL.has(event.type)) {
      // The server ends the stream after a finished build's last event: do not reconnect.
      source.close();
      setStream("finished");
    }
  }

  function connect() {
    const url = new URL(root.dataset.eventsUrl, window.location.href);
    url.searchParams.set("after", String(lastSeq));
    source = new EventSource(url);
    for (const type of types) source.addEventListener(type, onEvent);
    source.onopen = () => {
      // After a reconnection the sections may have missed a refresh while the network was away.
      if (root.dataset.stream === "reconnecting") scheduleRefresh();
      retryDelay = 1000;
      setStream("live");
    };
    source.onerror = () => {
      setStream("reconnecting");
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(connect, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 60000);
      }
    };
  }

  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, 150);
  }

  async function refresh() {
    if (refreshing) {
      refreshAgain = true;
      return;
    }
    refreshing = true;
    const after = lastSeq;
    try {
      const response = await fetch(root.dataset.sectionsUrl, { cache: "no-store" });
      if (!response.ok) return;
      const parsed = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = parsed.getElementById("live");
      const live = document.getElementById("live");
      if (!fresh || !live) return;
      // Sections the reader opened or closed stay that way.
      const open = new Map();
      for (const details of live.querySelectorAll("details[id]")) open.set(details.id, details.open);
      live.replaceWith(fresh);
      for (const details of fresh.querySelectorAll("details[id]")) {
        if (open.has(details.id)) details.open = open.get(details.id);
      }
      root.dataset.refreshedAfter = String(after);
    } catch (error) {
      // The next event refreshes again.
    } finally {
      refreshing = false;
      if (refreshAgain) {
        refreshAgain = false;
        scheduleRefresh();
      }
    }
  }

  if (root.dataset.stream !== "finished") connect();
})();
