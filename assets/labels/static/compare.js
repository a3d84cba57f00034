// The compare page: which of two images is better. ← or 1 picks the left, → or 2 the right,
// t or 3 is a tie, s skips, u undoes, f opens both originals, ? shows help. As on the rating
// page (app.js), a few pairs ahead are fetched and their previews decoded before they are
// needed; choices are sent in order on one promise chain (an undo waits for the choices
// before it), retried on network failures with the same request id, and a choice counts as
// saved only once the server answered 200.
"use strict";

const AHEAD = 3;          // pairs kept ready behind the one shown

const state = newState();
const NEXT = {path: "/api/pairs/next", what: "pair", key: pairKey};

function pairKey(pair) {
  return `${pair.left.post_key}|${pair.right.post_key}`;
}

// Resolves once both images are decoded, so showing the pair later is instant.
function preload(pair) {
  const sides = [pair.left, pair.right].map((item) => {
    const img = new Image();
    img.src = item.preview_url || item.image_url;
    return img.decode().catch(() => undefined);
  });
  pair.ready = Promise.all(sides);
  return pair;
}

function showSide(side, item) {
  const image = $(`${side}-image`);
  image.hidden = !item;
  const full = $(`${side}-full`);
  full.hidden = !item;
  full.href = item ? item.image_url : "#";
  full.textContent = item ? `${side} original (${item.post_key})` : "";
  if (item) { image.src = item.preview_url || item.image_url; image.alt = item.post_key; }
}

function show(pair) {
  $("pair").dataset.leftKey = pair ? pair.left.post_key : "";
  $("pair").dataset.rightKey = pair ? pair.right.post_key : "";
  showSide("left", pair && pair.left);
  showSide("right", pair && pair.right);
  $("message").textContent =
    pair ? "" : state.done ? "All done: no pairs left to compare." : "Loading…";
}

function openFull() {
  if (!state.current) return;
  for (const item of [state.current.left, state.current.right]) {
    window.open(item.image_url, "_blank", "noopener");
  }
}

function choose(choice) {
  const pair = state.current;
  if (!pair) return;
  remember(pairKey(pair));
  // One id per choice: a retry after a lost answer is recognised, not stored twice.
  const body = {left_key: pair.left.post_key, right_key: pair.right.post_key,
                labeler: state.labeler, choice, client: state.client,
                request_id: crypto.randomUUID()};
  enqueue(() => postUntilAnswered("/api/pairs", body).then(() => showError("")));
  advance();
}

function undo() {
  undoLatest("/api/pairs/undo", (r) => (r.left ? {left: r.left, right: r.right} : null));
}

async function refreshProgress() {
  if (!state.labeler) return;
  try {
    const p = await api(`/api/pairs/progress?${new URLSearchParams({labeler: state.labeler})}`);
    $("progress-fill").style.width = "0";
    $("progress-text").textContent =
      `${p.choices} choices · ${p.pairs} pairs · ${Math.round(p.per_hour)} per hour`;
  } catch (err) {
    $("progress-text").textContent = "progress unavailable";
  }
}

const KEYS = {
  ArrowLeft: "left", "1": "left", ArrowRight: "right", "2": "right",
  t: "tie", T: "tie", "3": "tie", s: "skip", S: "skip",
};

// The page's own keys: the choices of KEYS.
function judge(key) {
  if (!KEYS[key]) return false;
  choose(KEYS[key]);
  return true;
}

function onButton(event) {
  const button = event.target.closest("button");
  if (!button) return;
  if (button.dataset.action === "undo") undo();
  else if (button.dataset.choice) choose(button.dataset.choice);
  button.blur();
}

$("left-image").addEventListener("click", () => choose("left"));
$("right-image").addEventListener("click", () => choose("right"));
setupPage();
