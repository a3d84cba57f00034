// What the rating page (app.js) and the compare page (compare.js) share: the labeler's name,
// the JSON API with its errors, the queue of what comes next, the shared keys, and the one
// promise chain judgments are saved on. A page script defines `state` (newState()), `AHEAD`,
// `NEXT` (the endpoint that gives the next item, what to call it, and an item's key),
// `preload`, `show`, `refreshProgress`, `judge`, `undo`, `openFull` and `onButton`, then
// calls setupPage(); judgments go through enqueue(), each one retried on network failures
// until the server answers (a 4xx is the judgment's own fault), in the order they were made.
"use strict";

const RECENT = 30;        // judged in this tab: kept out of what the next request returns
const NAME_KEY = "scoretag.labeler";

function newState() {
  return {
    labeler: localStorage.getItem(NAME_KEY) || "",
    client: Math.random().toString(36).slice(2, 10),
    current: null,
    queue: [],
    recent: [],
    pending: 0,
    chain: Promise.resolve(),
    fetching: false,
    done: false,
  };
}

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
  };
  const response = await fetch(path, {credentials: "same-origin", ...init});
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data.error || response.statusText);
  return data;
}

function showError(text) {
  const box = $("error");
  box.textContent = text;
  box.hidden = !text;
}

function exclusions() {
  const held = state.queue.map(NEXT.key);
  if (state.current) held.push(NEXT.key(state.current));
  return [...new Set([...held, ...state.recent])];
}

// Keeps AHEAD items fetched and decoding behind the one shown.
async function refill() {
  if (state.fetching || !state.labeler) return;
  state.fetching = true;
  try {
    while (state.queue.length < AHEAD && !state.done) {
      const query = new URLSearchParams({labeler: state.labeler, exclude: exclusions().join(",")});
      const item = await api(`${NEXT.path}?${query}`);
      if (item.done) { state.done = true; break; }
      state.queue.push(preload(item));
      if (!state.current) advance();
    }
    showError("");
  } catch (err) {
    showError(`could not fetch the next ${NEXT.what}: ${err.message}`);
    setTimeout(refill, 3000);
  } finally {
    state.fetching = false;
  }
  if (!state.current) show(null);
}

function advance() {
  state.current = state.queue.shift() || null;
  show(state.current);
  refill();
}

function remember(key) {
  state.recent.push(key);
  if (state.recent.length > RECENT) state.recent.shift();
}

// Network failures are retried (the judgment stays pending); a 4xx is the judgment's fault.
async function postUntilAnswered(path, body) {
  for (let wait = 500; ; wait = Math.min(wait * 2, 10000)) {
    try {
      return await api(path, body);
    } catch (err) {
      if (err instanceof ApiError && err.status < 500) throw err;
      showError(`saving failed (${err.message}); retrying…`);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

function enqueue(task) {
  state.pending += 1;
  updateSaving();
  state.chain = state.chain.then(task).catch((err) => showError(err.message)).finally(() => {
    state.pending -= 1;
    updateSaving();
    refreshProgress();
  });
}

// Undoes the labeler's latest judgment, after those before it are saved, and shows again
// what it was on (`restored(answer)`: the item, or null when the server has none).
function undoLatest(path, restored) {
  enqueue(async () => {
    let result;
    try {
      result = await postUntilAnswered(path, {labeler: state.labeler});
    } catch (err) {
      if (err.status === 409) { showError("nothing to undo"); return; }
      throw err;
    }
    const item = restored(result);
    if (!item) return;
    if (state.current) state.queue.unshift(state.current);
    state.recent = state.recent.filter((k) => k !== NEXT.key(item));
    state.current = preload(item);
    show(state.current);
    showError("");
  });
}

function updateSaving() {
  $("saving").textContent = state.pending ? `saving ${state.pending}…` : "";
}

function toggleHelp(open) {
  const help = $("help");
  help.hidden = open === undefined ? !help.hidden : !open;
}

function askName() {
  $("name-input").value = state.labeler;
  $("name-dialog").hidden = false;
  $("name-input").focus();
}

function start() {
  $("who").textContent = state.labeler;
  state.queue = []; state.current = null; state.recent = []; state.done = false;
  refreshProgress();
  refill();
}

// Keys both pages share: ? and Escape for help, u undoes, f opens the original(s); the
// page's `judge(key)` takes its own keys and says whether it did.
function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  if (event.target.closest("input, textarea") || !$("name-dialog").hidden) return;
  const key = event.key;
  if (key === "?") toggleHelp();
  else if (key === "Escape") toggleHelp(false);
  else if (!$("help").hidden) return;
  else if (key === "u" || key === "U") undo();
  else if (key === "f" || key === "F") openFull();
  else if (!judge(key)) return;
  event.preventDefault();
}

function setupPage() {
  document.addEventListener("keydown", onKey);
  $("keys").addEventListener("click", onButton);
  $("help-button").addEventListener("click", () => toggleHelp());
  $("help-close").addEventListener("click", () => toggleHelp(false));
  $("who").addEventListener("click", askName);
  $("name-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("name-input").value.trim();
    if (!name) return;
    localStorage.setItem(NAME_KEY, name);
    state.labeler = name;
    $("name-dialog").hidden = true;
    start();
  });
  // When everything is judged, look again now and then: a new round may have been added.
  setInterval(() => { if (state.done && !state.current) { state.done = false; refill(); } }, 30000);
  if (state.labeler) start(); else askName();
}
