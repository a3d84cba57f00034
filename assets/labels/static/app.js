// The labeling page: keys 1-5 rate the image shown, s skips, u undoes, f opens the full
// image, ? shows help. The page shows each post's preview (a downscaled copy, or the
// original when previews are off); the original is one click (or f) away.
// A few posts ahead are fetched and their images decoded before they are needed, so rating
// never waits on the network; labels are sent in order on one promise chain (an undo waits
// for the labels before it), and a label counts as saved only once the server answered 200.
"use strict";

const AHEAD = 4;          // posts kept ready behind the one shown

const state = newState();
const NEXT = {path: "/api/next", what: "image", key: (i) => i.post_key};

// Resolves once the image is decoded, so showing it later is instant.
function preload(item) {
  const img = new Image();
  img.src = item.preview_url || item.image_url;
  item.ready = img.decode().catch(() => undefined);
  item.img = img;
  return item;
}

function show(item) {
  const image = $("image");
  $("stage").dataset.postKey = item ? item.post_key : "";
  $("stage").dataset.broken = "";
  image.hidden = !item;
  $("message").textContent = item ? "" : state.done ? "All done: no posts left to rate." : "Loading…";
  const full = $("full-link");
  full.hidden = !item;
  full.href = item ? item.image_url : "#";
  $("stratum").textContent = item ? item.stratum : "";
  const link = $("post-link");
  link.textContent = item ? item.post_key : "";
  link.href = item && item.post_url ? item.post_url : "#";
  if (item) { image.src = item.preview_url || item.image_url; image.alt = item.post_key; }
}

// A picture that cannot be shown (the server's placeholder did not render either): say so;
// the keys still rate or skip it.
function onImageError() {
  const item = state.current;
  if (!item) return;
  $("stage").dataset.broken = "1";
  $("image").hidden = true;
  $("message").textContent =
    "This image cannot be shown: press s to skip it, or f to open the original.";
}

function openFull() {
  if (state.current) window.open(state.current.image_url, "_blank", "noopener");
}

function rate(value) {
  const item = state.current;
  if (!item) return;
  remember(item.post_key);
  // One id per label: a retry after a lost answer is recognised, not stored twice.
  const body = {post_key: item.post_key, labeler: state.labeler, value, client: state.client,
                request_id: crypto.randomUUID()};
  enqueue(() => postUntilAnswered("/api/labels", body).then(() => showError("")));
  advance();
}

function undo() {
  undoLatest("/api/undo", (result) => result.item);
}

async function refreshProgress() {
  if (!state.labeler) return;
  try {
    const p = await api(`/api/progress?${new URLSearchParams({labeler: state.labeler})}`);
    const share = p.total ? p.labeled / p.total : 0;
    $("progress-fill").style.width = `${(100 * share).toFixed(2)}%`;
    $("progress-text").textContent =
      `${p.labeled} / ${p.total} labeled · ${Math.round(p.per_hour)} per hour`;
  } catch (err) {
    $("progress-text").textContent = "progress unavailable";
  }
}

// The page's own keys: 1-5 rate, s skips.
function judge(key) {
  if (key >= "1" && key <= "5") rate(Number(key));
  else if (key === "s" || key === "S") rate("skip");
  else return false;
  return true;
}

function onButton(event) {
  const button = event.target.closest("button");
  if (!button) return;
  if (button.dataset.action === "undo") undo();
  else if (button.dataset.value === "skip") rate("skip");
  else if (button.dataset.value) rate(Number(button.dataset.value));
  button.blur();
}

$("image").addEventListener("error", onImageError);
setupPage();
