// The media library page. Everything goes through the REST API (/api/...);
// this file only renders and wires events.

const $ = (id) => document.getElementById(id);
const MAX_BYTES = Number(document.body.dataset.maxBytes) || 40 * 1024 * 1024;
const PAGE = 40;
const KEY_COOKIE = "visualsearch_key";

const el = {
  form: $("search-form"), input: $("search-input"), visual: $("visual-toggle"), camera: $("camera-button"),
  minBox: $("min-score-box"), min: $("min-score"), minValue: $("min-score-value"),
  uploadButton: $("upload-button"), uploadInput: $("upload-input"),
  reference: $("reference"), refImage: $("reference-image"), refKind: $("reference-kind"), refName: $("reference-name"),
  back: $("back-button"), heading: $("heading"), summary: $("summary"), banner: $("error-banner"),
  grid: $("grid"), empty: $("empty"), loading: $("loading"), sentinel: $("sentinel"),
  menu: $("menu"), imageDialog: $("image-dialog"), urlForm: $("url-form"), imageUrl: $("image-url"),
  dropZone: $("drop-zone"), pickFile: $("pick-file"), searchFile: $("search-file"), imageError: $("image-dialog-error"),
  assetDialog: $("asset-dialog"), assetImage: $("asset-image"), assetTitle: $("asset-title"), assetMeta: $("asset-meta"),
  tagsForm: $("tags-form"), tagsInput: $("tags-input"), tagChips: $("tag-chips"), assetSimilar: $("asset-similar"),
  assetDownload: $("asset-download"), keyDialog: $("key-dialog"), keyForm: $("key-form"), keyInput: $("key-input"),
  keyError: $("key-error"), minNote: $("min-note"), minNoteText: $("min-note-text"), minClear: $("min-clear"),
  confirmDialog: $("confirm-dialog"), confirmTitle: $("confirm-title"), confirmText: $("confirm-text"), confirmOk: $("confirm-ok"),
  uploads: $("uploads"), uploadList: $("upload-list"), uploadsClose: $("uploads-close"),
  refineForm: $("refine-form"), refineInput: $("refine-input"), refRefine: $("reference-refine"),
  dropOverlay: $("drop-overlay"), toasts: $("toasts"),
};

// What the grid shows: the library (optionally filtered by name/tag) or search results.
// kind: "library" | "text" | "similar" | "url" | "file"; a "similar" view may be refined with words
// (refine: POST /api/search {text, asset_id}). understood: how the server read a text query.
let view = { kind: "library", q: "" };
let paging = { cursor: null, offset: 0, done: false, busy: false, token: 0 };
let total = null;
const assets = new Map(); // id -> asset shown on the page

// ---------------------------------------------------------------------------------------
// API
class ApiError extends Error {
  constructor(status, code, message, details) { super(message); this.status = status; this.code = code; this.details = details; }
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { credentials: "same-origin", ...options });
  } catch (err) {
    throw new ApiError(0, "network", "The server cannot be reached. Is `visualsearch serve` still running?");
  }
  if (response.status === 204) return null;
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  if (!response.ok) {
    const error = body && body.error ? body.error : { code: "http_" + response.status, message: `The server answered ${response.status}.` };
    if (response.status === 401) askForKey(error);
    throw new ApiError(response.status, error.code, error.message, error.details);
  }
  return body;
}

const postJson = (path, body) => api(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

// ---------------------------------------------------------------------------------------
// Rendering

// A long file name with its middle left out: what tells copies apart (a size, "16", another theme)
// is usually at its end, which cutting the end would hide.
function middleEllipsis(text, max) {
  if (text.length <= max) return text;
  const tail = Math.ceil((max - 1) * 0.6);
  return `${text.slice(0, max - 1 - tail)}…${text.slice(text.length - tail)}`;
}

function formatBytes(n) {
  if (n == null) return "—";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function svg(name) {
  const ns = "http://www.w3.org/2000/svg";
  const s = document.createElementNS(ns, "svg");
  s.setAttribute("aria-hidden", "true");
  const use = document.createElementNS(ns, "use");
  use.setAttribute("href", `#i-${name}`);
  s.append(use);
  return s;
}

// "Seen as: tabby cat, cougar · a pet 0.49, without cat 0.25": what the model sees in the image and
// how close it is to each part of the query (the API's `why`, asked for with explain: true).
function whyText(why) {
  const parts = why.parts.map((p) => `${p.negative ? "without " : ""}${p.text} ${p.score.toFixed(2)}`).join(", ");
  const text = why.text ? ` · Text in the picture: "${why.text.replace(/\n/g, " / ")}"` : "";
  return (why.concepts && why.concepts.length ? `Seen as: ${why.concepts.join(", ")} · ` : "") + `Matches: ${parts}${text}`;
}

function card(asset, hit) {
  assets.set(asset.id, asset);
  const li = document.createElement("li");
  li.className = "card";
  li.dataset.assetId = asset.id;
  const name = asset.name || asset.source;

  const open = document.createElement("button");
  open.type = "button";
  open.className = "thumb";
  open.setAttribute("aria-label", `Open ${name}`);
  const img = document.createElement("img");
  img.loading = "lazy";
  img.decoding = "async";
  img.alt = name;
  if (asset.thumbnail_url) img.src = asset.thumbnail_url;
  open.append(img);
  open.addEventListener("click", () => openAsset(asset.id));
  li.append(open);

  if (hit) {
    const badge = document.createElement("span");
    badge.className = "score" + (hit.rank === 1 ? " rank-1" : "");
    badge.textContent = hit.score.toFixed(2);
    badge.title = `Similarity score ${hit.score.toFixed(4)} (rank ${hit.rank})`;
    badge.setAttribute("aria-label", `score ${hit.score.toFixed(2)}`);
    li.append(badge);
    if (hit.why) { // a text search explains each match: on hover, and to screen readers
      const why = whyText(hit.why);
      open.title = why;
      badge.title += `\n${why}`;
      li.dataset.why = why;
      open.setAttribute("aria-description", why);
    }
  }

  const caption = document.createElement("div");
  caption.className = "caption";
  const text = document.createElement("div");
  text.className = "caption-text";
  const title = document.createElement("p");
  title.className = "name";
  title.textContent = name;
  title.title = name;
  const dims = document.createElement("p");
  dims.className = "dims";
  dims.textContent = [asset.width && `${asset.width} × ${asset.height}`, asset.format, formatBytes(asset.byte_size)].filter(Boolean).join(" · ");
  text.append(title, dims);
  if (hit && hit.words && hit.words.length) { // the query's words, read in the picture (OCR)
    const words = document.createElement("p");
    words.className = "words";
    words.textContent = `Shows “${hit.words.join(" ")}”`;
    words.title = "These words of your search were read in the picture";
    text.append(words);
  }
  const more = document.createElement("button");
  more.type = "button";
  more.className = "icon-button menu-button";
  more.setAttribute("aria-label", `More actions for ${name}`);
  more.setAttribute("aria-haspopup", "menu");
  more.setAttribute("aria-expanded", "false");
  more.setAttribute("aria-controls", "menu");
  more.append(svg("dots"));
  more.addEventListener("click", (event) => {
    event.stopPropagation();
    if (!el.menu.hidden && menuReturnFocus === more) { hideMenu(); return; } // a second click closes it
    const box = more.getBoundingClientRect();
    showMenu(asset.id, box.right - 220, box.bottom + 4, more);
  });
  caption.append(text, more);
  li.append(caption);

  li.addEventListener("contextmenu", (event) => {
    event.preventDefault();
    showMenu(asset.id, event.clientX, event.clientY, more);
  });
  return li;
}

function setBusy(busy) {
  el.loading.hidden = !busy;
  el.grid.setAttribute("aria-busy", busy ? "true" : "false");
}

function showError(message) {
  el.banner.textContent = message;
  el.banner.hidden = !message;
}

// Toasts show in the open modal dialog when there is one: the rest of the page is then under the
// dialog's backdrop (and inert). They go back to the page when that dialog closes.
function toast(message, kind = "info") {
  const modals = [...document.querySelectorAll("dialog[open]")].filter((d) => d.matches(":modal"));
  const host = modals.length ? modals[modals.length - 1] : document.body;
  if (el.toasts.parentElement !== host) host.append(el.toasts);
  const t = document.createElement("div");
  t.className = `toast ${kind}`;
  t.textContent = message;
  el.toasts.append(t);
  setTimeout(() => t.remove(), 5000);
}
for (const dialog of document.querySelectorAll("dialog")) {
  dialog.addEventListener("close", () => { if (dialog.contains(el.toasts)) document.body.append(el.toasts); });
}

// A styled confirmation (instead of the browser's confirm()): resolves true on the confirm button;
// Cancel, Esc or a click on the backdrop resolve false.
// kind "primary" for an action that loses nothing (restoring from the trash).
function confirmDialog(title, text, confirmLabel, kind = "danger") {
  const d = el.confirmDialog;
  el.confirmTitle.textContent = title;
  el.confirmText.textContent = text;
  el.confirmOk.textContent = confirmLabel;
  el.confirmOk.className = kind === "primary" ? "primary-button" : "danger-button";
  d.returnValue = "";
  d.showModal();
  return new Promise((resolve) => d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true }));
}

// A query the server cannot use (422: "-cat" says only what to leave out, "red^50" weighs too much):
// its own reason, as a sentence.
function searchError(err) {
  const message = describeError(err);
  if (err.status !== 422 || !(view.kind === "text" || (view.kind === "similar" && view.refine)) || !message) return message;
  const what = view.kind === "text" ? `“${view.q}”` : `“${view.refine}”`;
  return `Cannot search for ${what}: ${message}`;
}

function describeError(err) {
  const messages = {
    unsupported_image: "That file is not an image we can read.",
    invalid_image: "That image is corrupt or truncated, so it cannot be read.",
    too_large: "That image is over the 40 MB limit.",
    duplicate: "That image is already in the library.",
    near_duplicate: "A near-duplicate of that image is already in the library.",
    url_refused: "That link cannot be used",
    rate_limited: "Too many requests; wait a moment and try again.",
    not_found: "Not found.",
  };
  if (err.code === "url_refused") return `${messages.url_refused}: ${err.message}`;
  return messages[err.code] || err.message;
}

function updateSummary(count) {
  const n = count.toLocaleString();
  if (view.kind === "library") {
    el.summary.textContent = view.q ? `${n} ${count === 1 ? "match" : "matches"} for “${view.q}”` : `${n} ${count === 1 ? "image" : "images"}`;
  } else if (paging.done && !count) {
    el.summary.textContent = "No images match";
  } else {
    // A search ranks the whole library: without a minimum score it has as many results as the
    // library has images (less the reference image for Find similar), a number GET /api/assets gives.
    const exact = paging.done ? count : minScore() == null && view.all != null ? view.all : null;
    const results = exact != null ? `${exact.toLocaleString()} ${exact === 1 ? "result" : "results"}, best first` : `${n}+ results, best first`;
    // A query with operators ("beach -people"): how it was read, so a typo in the syntax shows.
    const read = view.kind === "text" && rewritten(view.q, view.understood) ? `Searching for: ${view.understood} · ` : "";
    // Nothing in the library matches closely (a nonsense query, or something that is not there): say so,
    // rather than presenting the nearest images as an answer.
    const none = view.kind === "text" && view.noClose ? `No close matches; showing the nearest ${n}, best first` : "";
    el.summary.textContent = read + (none || results);
  }
  updateMinNote();
}

const offset0 = (page) => page && page.offset === 0;

// Whether the server read a text query differently from how it was typed (operators, weights).
const squash = (text) => (text || "").trim().replace(/\s+/g, " ");
const rewritten = (typed, understood) => !!understood && squash(understood) !== squash(typed);

// "Refined: at night" under the reference image's name, as the server read the words once it answered.
function showRefine() {
  const words = view.kind === "similar" ? view.refine : "";
  el.refRefine.hidden = !words;
  el.refRefine.textContent = words ? `Refined: ${rewritten(words, view.understood) ? view.understood : words}` : "";
}

// When a minimum score is on, the results say so and how many it leaves out, with a way to show all.
function updateMinNote() {
  const min = minScore();
  el.minNote.hidden = view.kind === "library" || min == null || (!paging.done && !el.grid.children.length);
  if (el.minNote.hidden) return;
  const hidden = paging.done && view.all != null ? Math.max(0, view.all - el.grid.children.length) : null;
  el.minNoteText.textContent = `Minimum score ${min.toFixed(2)}` + (hidden == null ? " is on" : hidden ? ` hides ${hidden.toLocaleString()} ${hidden === 1 ? "result" : "results"}` : " hides none");
}
el.minClear.addEventListener("click", () => { if (current) go({ ...current, min: 0 }); });

// How many results a search without a minimum score has (see updateSummary).
async function countAll(token) {
  try {
    const page = await api("/api/assets?limit=1");
    if (token !== paging.token) return;
    view.all = Math.max(0, page.total - (view.kind === "similar" ? 1 : 0));
    if (paging.busy) return; // loadMore() will use it
    if (el.grid.children.length) updateSummary(el.grid.children.length);
    else if (paging.done && el.banner.hidden) updateMinNote(); // no results: what the minimum score hides
  } catch { /* the count stays "40+" */ }
}

// ---------------------------------------------------------------------------------------
// Loading pages

function reset(newView) {
  view = newView;
  paging = { cursor: null, offset: 0, done: false, busy: false, token: paging.token + 1 };
  assets.clear();
  el.grid.replaceChildren();
  el.empty.hidden = true;
  showError("");
  const searching = view.kind !== "library";
  el.reference.hidden = !["similar", "url", "file"].includes(view.kind);
  el.refineForm.hidden = view.kind !== "similar"; // the API refines a library image only
  showRefine();
  el.heading.textContent = {
    library: "Library", text: "Visual search", similar: "Similar images", url: "Search by image", file: "Search by image",
  }[view.kind];
  if (!searching) el.summary.textContent = "";
  el.minNote.hidden = true;
  if (searching) countAll(paging.token);
  document.title = `${el.heading.textContent} · visualsearch`;
}

async function loadMore() {
  if (paging.done || paging.busy) return;
  paging.busy = true;
  const token = paging.token;
  setBusy(true);
  try {
    const page = await fetchPage();
    if (token !== paging.token) return; // a newer search replaced this one
    if (page.query && page.query.understood) { view.understood = page.query.understood; showRefine(); }
    if (offset0(page)) view.noClose = page.close_matches === false; // the server's calibrated cut-off
    for (const item of page.items) el.grid.append(item.asset ? card(item.asset, item) : card(item));
    if (view.kind === "library") {
      total = page.total;
      paging.cursor = page.next_cursor;
      paging.done = !page.next_cursor;
      updateSummary(page.total);
    } else {
      paging.offset += page.items.length;
      paging.done = page.next_offset == null;
      updateSummary(el.grid.children.length);
    }
    if (!el.grid.children.length) showEmpty();
  } catch (err) {
    if (token !== paging.token) return;
    paging.done = true;
    showError(searchError(err));
    if (view.kind !== "library") el.summary.textContent = "";
  } finally {
    if (token === paging.token) {
      paging.busy = false;
      setBusy(false);
      if (pendingScroll != null) restoreScroll();
      // Keep filling until the sentinel is off screen (tall screens, small pages).
      if (!paging.done && isVisible(el.sentinel)) loadMore();
    }
  }
}

function isVisible(node) {
  const box = node.getBoundingClientRect();
  return box.top < window.innerHeight + 400;
}

function minScore() {
  const v = Number(el.min.value);
  return v > 0 ? v : null;
}

// The first page of a search by image, already fetched while the camera dialog was open (see searchFromDialog).
let prefetched = null;

function fetchPage(v = view, offset = paging.offset) {
  if (prefetched && offset === 0 && prefetched.kind === v.kind && prefetched.url === v.url && prefetched.file === v.file) {
    const page = prefetched.page;
    prefetched = null;
    return Promise.resolve(page);
  }
  const limit = PAGE;
  const options = { limit, offset, min_score: minScore() };
  switch (v.kind) {
    case "library": {
      const params = new URLSearchParams({ limit });
      if (paging.cursor) params.set("cursor", paging.cursor);
      if (v.q) params.set("q", v.q);
      return api(`/api/assets?${params}`);
    }
    case "text": return postJson("/api/search", { text: v.q, explain: true, ...options });
    case "similar": return postJson("/api/search", v.refine ? { text: v.refine, asset_id: v.assetId, ...options } : { asset_id: v.assetId, ...options });
    case "url": return postJson("/api/search", { image_url: v.url, ...options });
    case "file": {
      const form = new FormData();
      form.append("file", v.file, v.file.name);
      form.append("limit", String(limit));
      form.append("offset", String(offset));
      if (options.min_score != null) form.append("min_score", String(options.min_score));
      return api("/api/search/image", { method: "POST", body: form });
    }
  }
}

function showEmpty() {
  el.empty.replaceChildren();
  const strong = document.createElement("strong");
  const p = document.createElement("span");
  if (view.kind === "library" && !view.q) {
    strong.textContent = "Your library is empty";
    p.textContent = "Drop images anywhere on this page, or use Upload.";
  } else if (view.kind === "library") {
    strong.textContent = `No file names or tags match “${view.q}”`;
    p.textContent = "Turn on Visual to search by what the pictures show.";
  } else {
    strong.textContent = minScore() ? `No images score ${minScore().toFixed(2)} or more` : "No images match";
    p.textContent = minScore() ? "Lower the minimum score, or use Show all, to see more." : "Try other words or another image.";
  }
  el.empty.append(strong, p);
  el.empty.hidden = false;
}

new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting)) loadMore();
}, { rootMargin: "400px" }).observe(el.sentinel);

// ---------------------------------------------------------------------------------------
// Searching

// tag "typing": the name filter runs as you type, in one history entry per typing session.
function runSearch(tag = null) {
  const q = el.input.value.trim();
  const { visual, min } = controls();
  if (visual) {
    if (!q) { el.input.focus(); return; }
    go({ page: "library", kind: "text", q, visual, min }, "push", tag);
  } else {
    go({ page: "library", kind: "library", q, visual, min: 0 }, "push", tag);
  }
}

el.form.addEventListener("submit", (event) => { event.preventDefault(); runSearch(); });

let filterTimer;
el.input.addEventListener("input", () => {
  // Emptied (Esc, the clear button, or deleting the text): the results of that query go too.
  if (!el.input.value.trim() && current && current.page === "library" && (current.kind === "text" || (current.kind === "library" && current.q))) {
    go({ page: "library", kind: "library", q: "", ...controls(), min: 0 });
    return;
  }
  if (el.visual.checked) return; // visual search runs on Enter: each query costs a model call
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => runSearch("typing"), 250);
});

function syncVisualMode() {
  const on = el.visual.checked;
  el.minBox.hidden = !on;
  el.input.placeholder = on ? "Describe what you are looking for, e.g. “cold night” or “beach -people”" : "Filter by file name or tag";
}
el.visual.addEventListener("change", () => {
  syncVisualMode();
  if (el.input.value.trim()) runSearch();
  else if (current && current.kind !== "text") { current = { ...current, ...controls() }; record(current, "replace"); }
  el.input.focus();
});

el.min.addEventListener("input", () => { el.minValue.textContent = Number(el.min.value).toFixed(2); });
el.min.addEventListener("change", () => {
  if (!current || current.page !== "library") return;
  const route = { ...current, ...controls() };
  if (route.kind === "library") { current = route; record(route, "replace"); } // no results to filter: only the address
  else go(route, "push", "min"); // one entry per series of adjustments
});

function showReference(kind, name, src) {
  el.refKind.textContent = kind;
  el.refName.textContent = name;
  el.refName.title = name; // shown on two lines at most; the whole name on hover
  el.refImage.classList.remove("broken");
  if (src) el.refImage.src = src; else el.refImage.removeAttribute("src");
  el.refImage.alt = `Reference image: ${name}`;
}
// No broken-image icon anywhere: an image that fails to load (a thumbnail, the reference image, the
// picture in the asset dialog) shows a neutral placeholder instead (img.broken in app.css).
document.addEventListener("error", (event) => { if (event.target instanceof HTMLImageElement) event.target.classList.add("broken"); }, true);
document.addEventListener("load", (event) => { if (event.target instanceof HTMLImageElement) event.target.classList.remove("broken"); }, true);

function findSimilar(assetId) {
  go({ page: "library", kind: "similar", assetId, refine: "", ...controls() });
}

// refine: words that change what is looked for ("at night"); "" for plain Find similar.
async function showSimilar(assetId, refine = "") {
  let asset = assets.get(assetId);
  reset({ kind: "similar", assetId, refine });
  showReference("Similar to", asset ? asset.name || asset.source : `image #${assetId}`, asset && asset.thumbnail_url);
  if (!asset) {
    // Opened from an address (reload, Back, a shared link): name the reference image first.
    const token = paging.token;
    paging.busy = true; // no search before the image is known to exist
    try {
      asset = await api(`/api/assets/${assetId}`);
    } catch (err) {
      if (token !== paging.token) return;
      if (err.status === 404) {
        toast(`Image #${assetId} is not in the library.`);
        go({ ...current, kind: "library", q: "" }, "replace");
        return;
      }
    }
    if (token !== paging.token) return;
    paging.busy = false;
    if (asset) {
      assets.set(asset.id, asset);
      showReference("Similar to", asset.name || asset.source, asset.thumbnail_url);
    }
  }
  loadMore();
}

el.back.addEventListener("click", () => go({ page: "library", kind: "library", q: "", ...controls() }));

// Refine with words: the same reference image, changed by the words (its own address, &refine=...).
// Empty words (submitted, or the box cleared) go back to plain Find similar.
function refineSimilar(words) {
  if (!current || current.kind !== "similar") return;
  const refine = words.trim().slice(0, 200);
  if (refine === (current.refine || "")) { if (refine) go({ ...current, ...controls(), refine }, "replace"); return; }
  go({ ...current, ...controls(), refine });
}
el.refineForm.addEventListener("submit", (event) => { event.preventDefault(); refineSimilar(el.refineInput.value); });
el.refineInput.addEventListener("input", () => {
  if (!el.refineInput.value.trim() && current && current.kind === "similar" && current.refine) refineSimilar("");
});

// ---------------------------------------------------------------------------------------
// Search by image (camera dialog)

el.camera.addEventListener("click", () => {
  el.imageError.hidden = true;
  el.imageDialog.showModal();
  el.imageUrl.focus();
});

el.urlForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const url = el.imageUrl.value.trim();
  if (!url) return;
  searchFromDialog({ page: "library", kind: "url", url, ...controls() });
});

// The search by image runs while the dialog is open: a refused link or an unreadable file is said
// in the dialog, where the user is looking; only a search that worked closes it and shows results
// (its first page is handed to the results view, not fetched twice).
let dialogSearch = 0;
const dialogButtons = () => [el.urlForm.querySelector("button[type=submit]"), el.pickFile];

function dialogBusy(busy) {
  for (const b of dialogButtons()) b.disabled = busy;
  el.urlForm.querySelector("button[type=submit]").textContent = busy ? "Searching…" : "Search";
  el.imageDialog.setAttribute("aria-busy", busy ? "true" : "false");
}

async function searchFromDialog(route) {
  const seq = ++dialogSearch;
  el.imageError.hidden = true;
  dialogBusy(true);
  try {
    const page = await fetchPage(route, 0);
    if (seq !== dialogSearch || !el.imageDialog.open) return; // closed meanwhile: cancelled
    prefetched = { kind: route.kind, url: route.url, file: route.file, page };
    el.imageDialog.close();
    go(route);
  } catch (err) {
    if (seq !== dialogSearch || !el.imageDialog.open) return;
    el.imageError.textContent = describeError(err);
    el.imageError.hidden = false;
    if (route.kind === "url") { el.imageUrl.focus(); el.imageUrl.select(); }
  } finally {
    if (seq === dialogSearch) dialogBusy(false);
  }
}
el.imageDialog.addEventListener("close", () => { dialogSearch += 1; dialogBusy(false); });

function showUrlSearch(url) {
  reset({ kind: "url", url });
  el.imageUrl.value = url;
  // The browser loads the link itself only once the server has accepted it: a refused
  // address (private network, metadata service...) is never requested from the page either.
  showReference("Image from a link", url, null);
  loadMore().then(() => { if (view.kind === "url" && view.url === url && el.grid.children.length) el.refImage.src = url; });
}

function searchWithFile(file) {
  if (!file) return;
  if (file.size > MAX_BYTES) {
    el.imageError.textContent = `“${file.name}” is ${formatBytes(file.size)}; the limit is 40 MB.`;
    el.imageError.hidden = false;
    return;
  }
  searchFromDialog({ page: "library", kind: "file", file, ...controls() });
}

function showFileSearch(file) {
  reset({ kind: "file", file });
  showReference("Uploaded image", file.name, URL.createObjectURL(file));
  loadMore();
}

el.pickFile.addEventListener("click", () => el.searchFile.click());
el.dropZone.addEventListener("keydown", (event) => {
  if (event.key === "Enter" || event.key === " ") { event.preventDefault(); el.searchFile.click(); }
});
el.searchFile.addEventListener("change", () => { searchWithFile(el.searchFile.files[0]); el.searchFile.value = ""; });
for (const type of ["dragenter", "dragover"]) {
  el.dropZone.addEventListener(type, (event) => { event.preventDefault(); event.stopPropagation(); el.dropZone.classList.add("dragging"); });
}
el.dropZone.addEventListener("dragleave", () => el.dropZone.classList.remove("dragging"));
el.dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  event.stopPropagation();
  el.dropZone.classList.remove("dragging");
  searchWithFile(event.dataTransfer.files[0]);
});

// ---------------------------------------------------------------------------------------
// Menu (three dots or right-click)

let menuAsset = null;
let menuReturnFocus = null;

function showMenu(assetId, x, y, returnFocus) {
  if (menuReturnFocus) menuReturnFocus.setAttribute("aria-expanded", "false");
  menuAsset = assetId;
  menuReturnFocus = returnFocus;
  returnFocus.setAttribute("aria-expanded", "true");
  const asset = assets.get(assetId);
  el.menu.querySelector('[data-action="download"]').href = asset ? asset.original_url : "#";
  el.menu.hidden = false;
  const w = el.menu.offsetWidth, h = el.menu.offsetHeight;
  // Positioned in the document (not the viewport), so it stays with its card when the page scrolls.
  el.menu.style.left = `${window.scrollX + Math.max(8, Math.min(x, window.innerWidth - w - 8))}px`;
  el.menu.style.top = `${window.scrollY + Math.max(8, Math.min(y, window.innerHeight - h - 8))}px`;
  el.menu.querySelector("[role=menuitem]").focus();
}

function hideMenu(restoreFocus = false) {
  if (el.menu.hidden) return;
  el.menu.hidden = true;
  if (menuReturnFocus) menuReturnFocus.setAttribute("aria-expanded", "false");
  if (restoreFocus && menuReturnFocus) menuReturnFocus.focus();
}

el.menu.addEventListener("click", async (event) => {
  const item = event.target.closest("[data-action]");
  if (!item) return;
  const id = menuAsset;
  const action = item.dataset.action;
  if (action !== "download") event.preventDefault();
  hideMenu();
  if (action === "similar") findSimilar(id);
  if (action === "open") openAsset(id);
  if (action === "delete") deleteAsset(id);
});

el.menu.addEventListener("keydown", (event) => {
  const items = [...el.menu.querySelectorAll("[role=menuitem]")];
  const i = items.indexOf(document.activeElement);
  if (event.key === "ArrowDown") { event.preventDefault(); items[(i + 1) % items.length].focus(); }
  if (event.key === "ArrowUp") { event.preventDefault(); items[(i - 1 + items.length) % items.length].focus(); }
});

document.addEventListener("click", (event) => { if (!el.menu.contains(event.target)) hideMenu(); });
document.addEventListener("keydown", (event) => { if (event.key === "Escape") hideMenu(true); });

async function deleteAsset(id) {
  const asset = assets.get(id);
  const name = asset ? asset.name || asset.source : `asset ${id}`;
  if (!(await confirmDialog(`Remove “${name}” from the library?`, asset && asset.origin === "folder" ? "The file in its folder is not touched." : "The library's copy of the image is deleted.", "Remove"))) return;
  try {
    await api(`/api/assets/${id}`, { method: "DELETE" });
    const node = el.grid.querySelector(`[data-asset-id="${id}"]`);
    if (node) node.remove();
    assets.delete(id);
    if (view.kind === "library" && total != null) { total -= 1; updateSummary(total); }
    toast(`Removed “${name}”`);
  } catch (err) {
    toast(describeError(err), "error");
  }
}

// ---------------------------------------------------------------------------------------
// Asset details

async function openAsset(id) {
  let asset = assets.get(id);
  try {
    asset = await api(`/api/assets/${id}`);
    assets.set(id, asset);
  } catch (err) {
    if (!asset) { toast(describeError(err), "error"); return; }
  }
  const name = asset.name || asset.source;
  el.assetTitle.textContent = name;
  el.assetImage.src = asset.original_url;
  el.assetImage.alt = name;
  el.assetDownload.href = asset.original_url;
  const rows = [
    ["Dimensions", asset.width ? `${asset.width} × ${asset.height} px` : "—"],
    ["Format", asset.format || "—"],
    ["File size", formatBytes(asset.byte_size)],
    ["Added", new Date(asset.added_at).toLocaleString()],
    ["Source", asset.origin === "upload" ? "Uploaded in the browser or through the API" : asset.source],
    ["Asset id", String(asset.id)],
  ];
  el.assetMeta.replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v;
    return [dt, dd];
  }));
  // PUT replaces the whole list: saving the box's list, or the shown tags less the one removed.
  const save = async (tags, message) => {
    try {
      const saved = await api(`/api/assets/${id}/tags`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ tags }) });
      asset.tags = saved.tags;
      renderTags(saved.tags, remove);
      toast(message);
      return true;
    } catch (err) {
      toast(describeError(err), "error");
      return false;
    }
  };
  const remove = async (tag, index) => {
    if (!(await save(asset.tags.filter((t) => t !== tag), `Tag “${tag}” removed`))) return;
    const buttons = el.tagChips.querySelectorAll(".chip-remove"); // focus stays in the list
    (buttons[Math.min(index, buttons.length - 1)] || el.tagsInput).focus();
  };
  renderTags(asset.tags, remove);
  el.assetSimilar.onclick = () => findSimilar(id);
  el.tagsForm.onsubmit = (event) => {
    event.preventDefault();
    save(el.tagsInput.value.split(",").map((t) => t.trim()).filter(Boolean), "Tags saved");
  };
  el.assetDialog.showModal();
}

// Each tag is a chip with its own remove button.
function renderTags(tags, remove) {
  el.tagChips.replaceChildren(...tags.map((t, i) => {
    const chip = document.createElement("span");
    chip.className = "chip";
    const label = document.createElement("span");
    label.textContent = t;
    const x = document.createElement("button");
    x.type = "button";
    x.className = "chip-remove";
    x.setAttribute("aria-label", `Remove tag ${t}`);
    x.title = `Remove tag “${t}”`;
    x.append(svg("close"));
    x.addEventListener("click", () => remove(t, i));
    chip.append(label, x);
    return chip;
  }));
  el.tagsInput.value = tags.join(", ");
}

// Clicking the backdrop closes a dialog.
for (const dialog of [el.imageDialog, el.assetDialog, el.confirmDialog]) {
  dialog.addEventListener("click", (event) => { if (event.target === dialog) dialog.close(); });
}

// ---------------------------------------------------------------------------------------
// Uploads: one request per file, for per-file progress and errors.

const queue = [];
let running = 0;

function addUploads(files) {
  const list = [...files];
  if (!list.length) return;
  el.uploads.hidden = false;
  for (const file of list) {
    const row = document.createElement("li");
    row.className = "upload-item";
    const name = document.createElement("span"); name.className = "file"; name.textContent = file.name;
    const state = document.createElement("span"); state.className = "state"; state.textContent = "Waiting";
    const bar = document.createElement("progress"); bar.max = 100; bar.value = 0;
    bar.setAttribute("aria-label", `Upload progress of ${file.name}`);
    row.append(name, state, bar);
    el.uploadList.prepend(row);
    if (file.size > MAX_BYTES) {
      fail(row, `Too large (${formatBytes(file.size)}): the limit is 40 MB per image.`);
      continue;
    }
    queue.push({ file, row, state, bar });
  }
  pump();
}

function fail(row, message) {
  row.classList.add("failed");
  row.querySelector(".state").textContent = "Failed";
  row.querySelector("progress").remove();
  const reason = document.createElement("span");
  reason.className = "reason";
  reason.textContent = message;
  row.append(reason);
}

// The image already in the library that an upload copies: its thumbnail (opens its details) and
// its name, a link to the images similar to it (the new upload among them, side by side).
function showMatch(row, match, others = 0) {
  const id = match.asset_id;
  const box = document.createElement("div");
  box.className = "upload-match" + (row.classList.contains("warned") ? " warning" : "");
  const thumb = document.createElement("button");
  thumb.type = "button";
  thumb.className = "match-thumb";
  thumb.setAttribute("aria-label", `Open image #${id}`);
  const img = document.createElement("img");
  img.alt = "";
  thumb.append(img);
  thumb.addEventListener("click", () => openAsset(id));
  const text = document.createElement("div");
  text.className = "match-text";
  const what = document.createElement("span");
  what.className = "match-what";
  const similar = match.kind === "near_duplicate" && match.similarity != null ? ` (${Math.round(match.similarity * 100)}% similar)` : "";
  what.textContent = { exact_bytes: "Same file as", same_pixels: "Same pixels as", near_duplicate: `Near-duplicate${similar} of` }[match.kind] || "Looks like";
  if (row.classList.contains("warned")) what.prepend(svg("warn"));
  const link = document.createElement("a");
  link.className = "match-name";
  link.href = `/?similar=${id}`;
  link.textContent = `image #${id}`;
  link.addEventListener("click", (event) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    go(parseRoute(new URL(link.href).search));
  });
  text.append(what, link);
  if (others > 0) {
    const more = document.createElement("span"); more.className = "muted"; more.textContent = `and ${others} more like it`;
    text.append(more);
  }
  box.append(thumb, text);
  row.append(box);
  api(`/api/assets/${id}`).then((asset) => {
    assets.set(asset.id, asset);
    const name = asset.name || asset.source;
    link.textContent = name;
    link.title = `Show images similar to ${name}`;
    thumb.setAttribute("aria-label", `Open ${name}`);
    if (asset.thumbnail_url) img.src = asset.thumbnail_url;
  }).catch(() => { img.classList.add("broken"); });
}

// Set when an upload adds a picture: an open Duplicates view shows its copies and look-alikes,
// fetched once when the last upload of a batch is done (not once per file: each is a full run).
let uploadsAdded = false;

function pump() {
  while (running < 2 && queue.length) {
    running += 1;
    uploadOne(queue.shift()).finally(() => {
      running -= 1;
      pump();
      if (!running && !queue.length && uploadsAdded) {
        uploadsAdded = false;
        if (!dup.view.hidden && dupTab !== "trash") refreshTab();
      }
    });
  }
}

function uploadOne({ file, row, state, bar }) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    const form = new FormData();
    form.append("files", file, file.name);
    xhr.open("POST", "/api/assets");
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) { bar.value = Math.round((event.loaded / event.total) * 100); state.textContent = `${bar.value}%`; }
    };
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 201 && body && body.items && body.items[0].status === "created") {
        const asset = body.items[0].asset;
        const near = body.items[0].near_duplicates || [];
        row.classList.add("done");
        state.textContent = "Added";
        bar.value = 100;
        if (near.length) { row.classList.add("warned"); showMatch(row, near[0], near.length - 1); }
        if (view.kind === "library" && !view.q) {
          el.grid.prepend(card(asset));
          el.empty.hidden = true;
          total = (total || 0) + 1;
          updateSummary(total);
        }
        uploadsAdded = true; // the Duplicates view is fetched again once the queue drains (see pump)
      } else {
        const err = body && body.error ? body.error : { code: "http_" + xhr.status, message: `The server answered ${xhr.status}.` };
        if (xhr.status === 401) askForKey(err);
        let message = describeError(new ApiError(xhr.status, err.code, err.message, err.details));
        const existing = err.details && err.details.asset_id > 0 ? err.details.asset_id : null;
        // The box below names the picture and links to it; an id ("asset #14") told people nothing.
        if (err.code === "duplicate" && existing) message = "Already in the library (the same file): not added again.";
        fail(row, message);
        if (existing && (err.code === "duplicate" || err.code === "near_duplicate")) {
          showMatch(row, { asset_id: existing, kind: err.code === "duplicate" ? "exact_bytes" : "near_duplicate", similarity: err.details.similarity });
        }
      }
      resolve();
    };
    xhr.onerror = () => { fail(row, "Network error: the server cannot be reached."); resolve(); };
    state.textContent = "Uploading";
    xhr.send(form);
  });
}

el.uploadButton.addEventListener("click", () => el.uploadInput.click());
el.uploadInput.addEventListener("change", () => { addUploads(el.uploadInput.files); el.uploadInput.value = ""; });
el.uploadsClose.addEventListener("click", () => { el.uploads.hidden = true; el.uploadList.replaceChildren(); });

// Drag and drop anywhere on the page uploads (the camera dialog has its own drop area).
let dragDepth = 0;
const hasFiles = (event) => event.dataTransfer && [...event.dataTransfer.types].includes("Files");
window.addEventListener("dragenter", (event) => {
  if (!hasFiles(event) || el.imageDialog.open) return;
  dragDepth += 1;
  el.dropOverlay.hidden = false;
});
window.addEventListener("dragleave", () => { dragDepth = Math.max(0, dragDepth - 1); if (!dragDepth) el.dropOverlay.hidden = true; });
window.addEventListener("dragover", (event) => { if (hasFiles(event)) event.preventDefault(); });
window.addEventListener("drop", (event) => {
  event.preventDefault();
  dragDepth = 0;
  el.dropOverlay.hidden = true;
  if (!el.imageDialog.open) addUploads(event.dataTransfer.files);
});

// ---------------------------------------------------------------------------------------
// API key (only when the server requires one)

// A wrong key is said in the key dialog itself (the page behind it is inert and hidden by the backdrop).
function askForKey(error = null) {
  const wrong = error && error.code === "invalid_key";
  el.keyError.textContent = wrong ? "That API key is unknown or has been revoked. Check it, or create a new one." : "";
  el.keyError.hidden = !wrong;
  if (!el.keyDialog.open) { el.keyDialog.showModal(); el.keyInput.focus(); }
  if (wrong) el.keyInput.select();
}

// The key is tried before the dialog closes: a wrong one keeps the dialog open with the reason.
el.keyForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = el.keyInput.value.trim();
  if (!key) return;
  document.cookie = `${KEY_COOKIE}=${encodeURIComponent(key)}; path=/; SameSite=Strict; max-age=31536000`;
  const button = el.keyForm.querySelector("button[type=submit]");
  button.disabled = true;
  el.keyError.hidden = true;
  try {
    await api("/api/assets?limit=1");
  } catch (err) {
    if (err.status === 401) return; // api() has put the reason in this dialog
    if (err.status === 0) { el.keyError.textContent = describeError(err); el.keyError.hidden = false; return; }
  } finally {
    button.disabled = false;
  }
  el.keyDialog.close();
  if (current) go(current, "replace"); // the view again, now with the key (Duplicates included)
});

// ---------------------------------------------------------------------------------------
// Duplicates view (/?view=duplicates), in three tabs: "Duplicates" (copies: exact and near;
// the extras are selected), "Similar shots" (&tab=similar: different pictures that look alike;
// nothing is selected) and "Trash" (&tab=trash: what was moved, with a way to restore it).

const dup = {
  view: $("duplicates-view"), library: $("library-view"), list: $("dups-list"), trashList: $("trash-list"),
  summary: $("dups-summary"), empty: $("dups-empty"), emptyTitle: $("dups-empty-title"), emptyText: $("dups-empty-text"),
  loading: $("dups-loading"), loadingText: $("dups-loading-text"), error: $("dups-error"), more: $("dups-more"),
  trashAll: $("dups-trash-all"), trashAllLabel: $("dups-trash-all-label"), tabs: $("dups-tabs"),
  navLibrary: $("nav-library"), navDuplicates: $("nav-duplicates"), heading: $("dups-heading"),
};
const TABS = {
  copies: {
    endpoint: "/api/duplicates", title: "Duplicates", loading: "Looking for copies…", more: "Show more groups",
    emptyTitle: "No duplicates found", emptyText: "Every image in the library is unique.", trashAll: "Move all selected extras to trash",
    trashShown: (n) => `Move selected extras of the ${n} groups shown to trash`,
  },
  similar: {
    endpoint: "/api/groups", title: "Similar shots", loading: "Looking for pictures that look alike…", more: "Show more groups",
    emptyTitle: "No similar shots found", emptyText: "No two pictures in the library look alike.", trashAll: "Move all selected to trash",
    trashShown: (n) => `Move selected pictures of the ${n} groups shown to trash`,
  },
  trash: {
    endpoint: "/api/trash", title: "Trash", loading: "Reading the trash…", more: "Show more",
    emptyTitle: "The trash is empty", emptyText: "Images moved to the trash from the other tabs are listed here and can be restored.", trashAll: "",
  },
};
const KIND_LABEL = { exact_bytes: "Same file", same_pixels: "Same pixels", near_duplicate: "Near-duplicate", lookalike: "Look-alike" };
const GROUP_PAGE = 20;
// The person's own ticks and unticks, per tab (assetId:sha256 -> checked), kept while the page is open.
const picks = { copies: new Map(), similar: new Map() };
let dupTab = "copies";
let dupOffset = 0;
let dupToken = 0;

const plural = (n, word, words = `${word}s`) => `${n.toLocaleString()} ${n === 1 ? word : words}`;
const COPY_RETRY_MS = 2000; // how often a Duplicates tab waiting for the copy check asks again
let copyRetry = 0; // its timer (one at a time)

// One image of a group. Copies: the keeper (with why) and its extras, selected. Similar shots:
// the first picture is what the others are compared with; nothing is selected.
function dupItem(member, group, tab) {
  const asset = member.asset;
  const first = member === group.keeper;
  assets.set(asset.id, asset);
  const div = document.createElement("div");
  div.className = "dup-item" + (first && tab === "copies" ? " keeper" : "") + (first && tab === "similar" ? " reference-shot" : "");
  div.dataset.assetId = asset.id;
  const name = asset.name || asset.source;
  const tag = document.createElement("span");
  tag.className = "tag" + (!first && tab === "copies" ? ` tag-${member.kind}` : "");
  // A copy's badge is its tier: the model's similarity says nothing about whether it is a copy
  // (a 16 px icon of a logo is its near-duplicate at "50% similar"), so it is only a detail below.
  const similarity = `${(member.similarity * 100).toFixed(0)}%`;
  tag.textContent = first ? (tab === "copies" ? "Keep" : "Compared with") : tab === "copies" ? (KIND_LABEL[member.kind] || member.kind) : `${similarity} similar`;
  const img = document.createElement("img");
  img.loading = "lazy";
  img.alt = name;
  if (asset.thumbnail_url) img.src = asset.thumbnail_url;
  img.addEventListener("click", () => openAsset(asset.id));
  const info = document.createElement("div");
  info.className = "info";
  const title = document.createElement("span"); title.className = "name"; title.textContent = middleEllipsis(name, 60); title.title = asset.source;
  const size = document.createElement("span"); size.className = "muted";
  size.textContent = `${asset.width} × ${asset.height} · ${formatBytes(asset.byte_size)}`;
  const added = document.createElement("span"); added.className = "muted"; added.textContent = `Added ${new Date(asset.added_at).toLocaleDateString()}`;
  info.append(title, size, added);
  if (!first && tab === "copies") {
    const model = document.createElement("span"); model.className = "muted model-similarity"; model.textContent = `Model similarity ${similarity}`;
    info.append(model);
  }
  if (first && tab === "copies" && group.keeper_reason) {
    const why = document.createElement("span"); why.className = "keep-reason"; why.textContent = `Keep: ${group.keeper_reason}`;
    info.append(why);
  }
  if (!first && tab !== "copies") { // a copy's tier is its badge already
    const kind = document.createElement("span"); kind.className = `kind kind-${member.kind}`; kind.textContent = KIND_LABEL[member.kind] || member.kind;
    info.append(kind);
  }
  if (!first || tab === "similar") {
    const pick = document.createElement("label"); pick.className = "pick";
    const box = document.createElement("input"); box.type = "checkbox"; box.value = asset.id;
    // What the person ticked or unticked outlives the reload after a move: a box unticked on purpose
    // must not come back ticked under "Move all selected" (the id with its digest: ids are given out again).
    const pickKey = `${asset.id}:${asset.sha256}`;
    box.checked = picks[tab].has(pickKey) ? picks[tab].get(pickKey) : tab === "copies";
    box.addEventListener("change", () => picks[tab].set(pickKey, box.checked));
    box.setAttribute("aria-label", `Move ${name} to trash`);
    pick.append(box, "Move to trash");
    info.append(pick);
  }
  div.append(tag, img, info);
  return div;
}

// What a group is, in words: exact copies, near-duplicates (or both), or look-alikes.
function groupTier(group, tab) {
  if (tab === "similar") return "Different pictures that look alike";
  const exact = group.others.filter((m) => m.kind === "exact_bytes" || m.kind === "same_pixels").length;
  if (exact === group.others.length) return "Exact copies";
  return exact ? "Exact copies and near-duplicates" : "Near-duplicates";
}

function dupGroup(group, n, tab) {
  const li = document.createElement("li");
  li.className = "dup-group";
  const header = document.createElement("header");
  const h = document.createElement("h2"); h.textContent = `Group ${n} · ${group.size} images`;
  const tier = document.createElement("span"); tier.className = "tier"; tier.textContent = groupTier(group, tab);
  const spacer = document.createElement("span"); spacer.className = "spacer";
  const button = document.createElement("button"); button.type = "button"; button.className = "danger-button";
  button.append(svg("trash"), "Move selected to trash");
  button.addEventListener("click", () => trashIds(selectedIn(li)));
  header.append(h, tier, spacer, button);
  const row = document.createElement("div"); row.className = "dup-row";
  row.append(dupItem(group.keeper, group, tab), ...group.others.map((m) => dupItem(m, group, tab)));
  li.append(header, row);
  return li;
}

function selectedIn(root) {
  return [...root.querySelectorAll(".pick input:checked")].map((b) => Number(b.value));
}

// After a move, the tab is fetched again (as many groups as were shown): counts, numbering and
// groups are the server's, not patched in the page.
async function trashIds(ids) {
  if (!ids.length) { toast("Nothing selected"); return; }
  const n = plural(ids.length, "image");
  const text = "They go to the library's trash folder and can be restored from the Trash tab.";
  if (!(await confirmDialog(`Move ${n} to the trash?`, text, `Move ${n} to trash`))) return;
  try {
    const result = await postJson("/api/duplicates/trash", { asset_ids: ids });
    for (const id of ids) assets.delete(id);
    toast(`Moved ${plural(result.moved.length, "image")} to the trash (batch ${result.batch})`);
    refreshTab();
  } catch (err) {
    toast(describeError(err), "error");
  }
}

function refreshTab() {
  loadTab(true, dupOffset);
}

// A move to the trash, with its files and a Restore button while any of them is still there.
function trashBatch(batch) {
  const li = document.createElement("li");
  li.className = "trash-batch" + (batch.restorable ? "" : " restored");
  li.dataset.batch = batch.batch;
  const when = new Date(batch.at).toLocaleString();
  const header = document.createElement("header");
  const text = document.createElement("div"); text.className = "batch-text";
  const h = document.createElement("h2"); h.textContent = `${plural(batch.count, "image")} moved ${when}`;
  const id = document.createElement("span"); id.className = "muted batch-id"; id.textContent = `Batch ${batch.batch}`;
  text.append(h, id);
  const spacer = document.createElement("span"); spacer.className = "spacer";
  header.append(text, spacer);
  if (batch.restorable) {
    const button = document.createElement("button"); button.type = "button"; button.className = "secondary-button restore-button";
    button.append(svg("restore"), "Restore");
    button.setAttribute("aria-label", `Restore ${plural(batch.count, "image")} moved ${when}`);
    button.addEventListener("click", () => restoreBatch(batch, button));
    header.append(button);
  } else {
    const done = document.createElement("span"); done.className = "batch-state"; done.textContent = "Restored";
    header.append(done);
  }
  const files = document.createElement("ul"); files.className = "trash-files";
  const SHOWN = 12;
  for (const f of batch.files.slice(0, SHOWN)) {
    const item = document.createElement("li");
    // What the file looks like: a name alone does not say which of two copies went to the trash.
    const thumb = document.createElement("img"); thumb.className = "trash-thumb"; thumb.loading = "lazy"; thumb.alt = "";
    thumb.src = f.thumbnail_url;
    thumb.addEventListener("error", () => thumb.classList.add("missing"), { once: true });
    const text = document.createElement("span"); text.className = "trash-file-text";
    const name = document.createElement("span"); name.className = "name"; name.textContent = f.name; name.title = f.original;
    const where = document.createElement("span"); where.className = "muted where"; where.textContent = f.original;
    text.append(name, where);
    item.append(thumb, text);
    if (batch.restorable && !f.in_trash) item.classList.add("restored");
    files.append(item);
  }
  if (batch.files.length > SHOWN) {
    const rest = document.createElement("li"); rest.className = "muted"; rest.textContent = `and ${plural(batch.files.length - SHOWN, "more image")}`;
    files.append(rest);
  }
  li.append(header, files);
  return li;
}

async function restoreBatch(batch, button) {
  const n = plural(batch.files.filter((f) => f.in_trash).length, "image");
  const text = "They go back where they were and are added to the library again (with new ids).";
  if (!(await confirmDialog(`Restore ${n}?`, text, `Restore ${n}`, "primary"))) return;
  button.disabled = true;
  try {
    const result = await api(`/api/trash/${encodeURIComponent(batch.batch)}/restore`, { method: "POST" });
    const back = result.restored.filter((r) => r.asset).length;
    toast(`Restored ${plural(back, "image")} to the library`);
  } catch (err) {
    toast(describeError(err), "error");
  }
  refreshTab();
}

function setCount(tab, page) {
  const n = tab === "copies" ? page.extras : tab === "similar" ? page.total : page.in_trash;
  const node = $(`count-${tab}`);
  node.textContent = n ? n.toLocaleString() : "";
  node.title = tab === "copies" ? `${plural(n, "extra image")}` : tab === "similar" ? plural(n, "group") : `${plural(n, "image")} in the trash`;
}

// The other tabs' numbers (one small request each), so a move or a restore shows everywhere.
function refreshCounts(except) {
  const token = dupToken;
  for (const tab of Object.keys(TABS)) {
    if (tab === except) continue;
    api(`${TABS[tab].endpoint}?limit=1`).then((page) => { if (token === dupToken) setCount(tab, page); }).catch(() => {});
  }
}

function summarize(tab, page) {
  if (!page.total) { dup.summary.textContent = ""; return; }
  if (tab === "copies") dup.summary.textContent = `${plural(page.total, "group")} · ${plural(page.extras, "extra image")}`;
  else if (tab === "similar") dup.summary.textContent = `${plural(page.total, "group")} · ${plural(page.total + page.extras, "picture")}`;
  else dup.summary.textContent = `${plural(page.total, "move")} · ${plural(page.in_trash, "image")} in the trash`;
}

// fresh: from the first group (keep: at least this many, to stay where the user was); else the next page.
async function loadTab(fresh, keep = 0) {
  const tab = dupTab;
  const info = TABS[tab];
  const token = ++dupToken;
  const offset = fresh ? 0 : dupOffset;
  const limit = Math.min(200, Math.max(GROUP_PAGE, keep));
  dup.error.hidden = true;
  dup.loading.hidden = false;
  dup.more.hidden = true;
  clearTimeout(copyRetry); // a retry of a load that is no longer shown
  if (fresh && !keep) {
    dup.list.replaceChildren();
    dup.trashList.replaceChildren();
    dup.empty.hidden = true;
    dup.trashAll.hidden = true;
    dup.summary.textContent = "";
  }
  try {
    const page = await api(`${info.endpoint}?limit=${limit}&offset=${offset}`);
    if (token !== dupToken) return; // another tab or a newer load
    const target = tab === "trash" ? dup.trashList : dup.list;
    const nodes = tab === "trash" ? page.items.map(trashBatch) : page.items.map((g, i) => dupGroup(g, offset + i + 1, tab));
    if (fresh) target.replaceChildren(...nodes); else target.append(...nodes);
    dupOffset = offset + page.items.length;
    summarize(tab, page);
    setCount(tab, page);
    dup.empty.hidden = page.total > 0;
    dup.trashAll.hidden = tab === "trash" || page.total === 0;
    dup.more.hidden = dupOffset >= page.total;
    // The button acts on the groups on the page: with more to load, it says so.
    dup.trashAllLabel.textContent = dupOffset < page.total && info.trashShown ? info.trashShown(dupOffset) : info.trashAll;
    if (fresh) refreshCounts(tab);
  } catch (err) {
    if (token !== dupToken) return;
    if (err.code === "checking_copies") {
      // The copy check after indexing (minutes on a big new library): say how far it is, ask again.
      const { done = 0, total = 0 } = err.details || {};
      dup.loadingText.textContent = total
        ? `Checking the library for copies: ${done.toLocaleString()} of ${plural(total, "pair")}…`
        : "Checking the library for copies…";
      copyRetry = setTimeout(() => { if (token === dupToken) loadTab(fresh, keep); }, COPY_RETRY_MS);
      return;
    }
    dup.error.textContent = describeError(err);
    dup.error.hidden = false;
  }
  if (token === dupToken) { dup.loading.hidden = true; dup.loadingText.textContent = info.loading; }
}

function showDuplicates(tab) {
  dupTab = TABS[tab] ? tab : "copies";
  const info = TABS[dupTab];
  for (const link of dup.tabs.querySelectorAll("a")) {
    if (link.dataset.tab === dupTab) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
  for (const name of Object.keys(TABS)) $(`explain-${name}`).hidden = name !== dupTab;
  dup.list.hidden = dupTab === "trash";
  dup.trashList.hidden = dupTab !== "trash";
  dup.heading.textContent = info.title; // the heading names the tab shown, as the window title does
  dup.emptyTitle.textContent = info.emptyTitle;
  dup.emptyText.textContent = info.emptyText;
  dup.loadingText.textContent = info.loading;
  dup.more.textContent = info.more;
  dup.trashAllLabel.textContent = info.trashAll;
  loadTab(true);
}

dup.more.addEventListener("click", () => loadTab(false));
dup.trashAll.addEventListener("click", () => trashIds(selectedIn(dup.list)));

// ---------------------------------------------------------------------------------------
// Models view (/?view=models): the curated embedding models, the one in use, and a switch to
// another (POST /api/models/use: a download job, then a re-embedding job; searches keep working).

const mod = {
  view: $("models-view"), summary: $("models-summary"), error: $("models-error"), pinned: $("models-pinned"),
  current: $("models-current"), active: $("models-active"), activeFamily: $("models-active-family"),
  moving: $("models-moving"), movingText: $("models-moving-text"), movingBar: $("models-moving-bar"),
  download: $("models-download"), downloadText: $("models-download-text"), downloadBar: $("models-download-bar"),
  list: $("models-list"), loading: $("models-loading"), nav: $("nav-models"),
};
const POLL_MS = 1500;
const MB = 1024 * 1024;
let modelsData = null; // the last GET /api/models
let modelsToken = 0; // a newer load (or leaving the view) makes older answers stale
let modelsTimer = null;
let modelsOn = false;
let modelPosting = false;
let modelJob = null; // { id, name, url }: the download this page started, followed until it ends

const megabytes = (bytes, digits = 1) => (bytes / MB).toFixed(digits);

function modelStatus(m, data) {
  if (m.name === data.active) return { text: "In use", kind: "in-use" };
  if (m.name === data.requested) return { text: "Moving to it", kind: "moving" };
  if (m.installed) return { text: "Downloaded", kind: "downloaded" };
  if (m.partial_bytes > 0) return { text: `Partly downloaded (${megabytes(m.partial_bytes)} MB)`, kind: "partial" };
  return { text: "Not downloaded", kind: "none" };
}

function fact(label, value, title = "") {
  const div = document.createElement("div");
  const dt = document.createElement("dt"); dt.textContent = label;
  const dd = document.createElement("dd"); dd.textContent = value;
  if (title) dd.title = title;
  div.append(dt, dd);
  return div;
}

function modelRow(m, data, busy) {
  const li = document.createElement("li");
  const status = modelStatus(m, data);
  li.className = `model model-${status.kind}`;
  li.dataset.model = m.name;

  const about = document.createElement("div"); about.className = "model-about";
  const name = document.createElement("h2"); name.className = "model-name"; name.textContent = m.name;
  const family = document.createElement("p"); family.className = "model-family muted"; family.textContent = m.family;
  const pick = document.createElement("p"); pick.className = "model-pick";
  pick.textContent = m.pick ? m.pick.charAt(0).toUpperCase() + m.pick.slice(1) + "." : "";
  about.append(name, family, pick);

  const r1 = (v) => (v == null ? "not published" : `${v.toFixed(1)}%`);
  const speed = m.images_per_s == null ? "not measured" : `${m.images_per_s.toFixed(m.images_per_s < 10 ? 1 : 0)} images/s`;
  const facts = document.createElement("dl"); facts.className = "model-facts";
  facts.append(
    fact("Vector", `${m.dim} dimensions`),
    fact("Download", m.download_mb ? `${m.download_mb.toLocaleString()} MB` : "bundled"),
    fact("Languages", m.languages),
    fact("COCO R@1", r1(m.coco_r1), m.source),
    fact("Flickr30k R@1", r1(m.flickr_r1), m.source),
    fact("Speed", speed, m.text_ms == null ? "" : `${m.text_ms.toFixed(0)} ms to embed a query`),
  );
  const fine = document.createElement("p"); fine.className = "model-fine muted";
  fine.textContent = `Figures: ${m.source}` + (m.licence ? ` · Licence: ${m.licence}` : "");

  const side = document.createElement("div"); side.className = "model-side";
  const badge = document.createElement("span"); badge.className = `model-status status-${status.kind}`; badge.textContent = status.text;
  side.append(badge);
  if (!data.pinned && m.name !== data.requested) {
    const use = document.createElement("button");
    use.type = "button";
    use.className = "secondary-button model-use";
    use.textContent = "Use";
    use.setAttribute("aria-label", `Use ${m.name}`);
    use.disabled = busy;
    if (busy) use.title = "Wait for the download or the re-embedding in progress to finish";
    use.addEventListener("click", () => useModel(m));
    side.append(use);
  }
  li.append(about, side, facts, fine);
  return li;
}

function setProgress(box, text, bar, message, done, total) {
  box.hidden = false;
  text.textContent = message;
  if (total > 0) { bar.max = total; bar.value = Math.min(done, total); } else bar.removeAttribute("value"); // indeterminate
}

function renderModels(data) {
  modelsData = data;
  const job = data.job;
  const busy = modelPosting || !!job;
  const byName = new Map(data.models.map((m) => [m.name, m]));
  mod.summary.textContent = plural(data.models.length, "model");
  mod.pinned.hidden = !data.pinned;
  mod.current.hidden = false;
  mod.active.textContent = data.active;
  mod.activeFamily.textContent = byName.has(data.active) ? byName.get(data.active).family : "";

  // Re-embedding: from model_change (what is left), else the reembed job.
  const change = data.model_change || (job && job.kind === "reembed" ? { to_model: data.requested, done: job.done, total: job.total } : null);
  if (change && data.requested !== data.active) {
    const to = change.to_model || data.requested;
    setProgress(mod.moving, mod.movingText, mod.movingBar,
      `Moving to ${to}: ${change.done.toLocaleString()} of ${plural(change.total, "image")} re-embedded`, change.done, change.total);
  } else mod.moving.hidden = true;

  if (job && job.kind === "model") {
    const name = data.downloading || (modelJob && modelJob.id === job.id ? modelJob.name : "the new model");
    const total = byName.has(name) ? byName.get(name).download_mb : null;
    const message = job.total > 0 ? `Downloading ${name}: ${megabytes(job.done)} of ${megabytes(job.total, 0)} MB`
      : `Downloading ${name}: starting${total ? ` (about ${total.toLocaleString()} MB)` : ""}…`;
    setProgress(mod.download, mod.downloadText, mod.downloadBar, message, job.done, job.total);
  } else mod.download.hidden = true;

  mod.list.setAttribute("aria-busy", busy ? "true" : "false");
  // Rebuild the rows only when what they show changed: a poll during a download must not replace
  // them every 1.5 s (a keyboard user's focus on a Use button would be lost, and a reader's place).
  const shown = JSON.stringify([data.models, data.active, data.requested, data.pinned, busy]);
  if (shown !== mod.list.dataset.shown) {
    mod.list.dataset.shown = shown;
    mod.list.replaceChildren(...data.models.map((m) => modelRow(m, data, busy)));
  }
}

function showModelsError(message) {
  mod.error.textContent = message;
  mod.error.hidden = !message;
}

// One look at the server; polls again while something is moving (a job, a re-embedding, the
// download this page started).
async function refreshModels() {
  clearTimeout(modelsTimer);
  const token = ++modelsToken;
  try {
    const data = await api("/api/models");
    if (token !== modelsToken || !modelsOn) return;
    if (modelJob && !(data.job && data.job.id === modelJob.id)) await followJob(token);
    if (token !== modelsToken || !modelsOn) return;
    renderModels(data);
    if (data.job || data.model_change || modelJob) modelsTimer = setTimeout(refreshModels, POLL_MS);
  } catch (err) {
    if (token !== modelsToken || !modelsOn) return;
    showModelsError(describeError(err));
    if (modelsData) modelsTimer = setTimeout(refreshModels, POLL_MS * 2); // keep trying while something moves
  } finally {
    if (token === modelsToken) mod.loading.hidden = true;
  }
}

// The download this page started is no longer in progress: did it work?
async function followJob(token) {
  const job = modelJob;
  let record;
  try { record = await api(job.url); } catch { modelJob = null; return; } // e.g. a key that may not read jobs
  if (token !== modelsToken) return;
  if (record.status === "failed") {
    modelJob = null;
    showModelsError(`Downloading ${job.name} failed: ${record.error || "no reason given"}`);
  } else if (record.status === "done") {
    modelJob = null;
    toast(`${job.name} is downloaded; the library is being re-embedded`);
  }
}

async function useModel(m) {
  const data = modelsData;
  const left = m.installed ? 0 : Math.max(0, m.download_mb - Math.floor(m.partial_bytes / MB));
  const download = !m.download_mb || m.installed ? "It is already on this machine, so nothing is downloaded."
    : m.partial_bytes > 0 ? `This downloads the remaining ~${left.toLocaleString()} MB of it (once).`
    : `This downloads ~${m.download_mb.toLocaleString()} MB (once).`;
  const text = `${download} Then the library is re-embedded with it in the background; searches keep working with ${data.active} until that is done.`;
  if (!(await confirmDialog(`Use ${m.name}?`, text, `Use ${m.name}`, "primary"))) return;
  showModelsError("");
  modelPosting = true;
  renderModels(data);
  try {
    const job = await postJson("/api/models/use", { name: m.name });
    modelJob = { id: job.id, name: m.name, url: job.status_url || `/api/jobs/${job.id}` };
    toast(m.installed || !m.download_mb ? `Switching to ${m.name}` : `Downloading ${m.name}…`);
  } catch (err) {
    showModelsError(`Cannot use ${m.name}: ${describeError(err)}`);
  } finally {
    modelPosting = false;
  }
  if (modelsOn) refreshModels();
}

function showModels() {
  if (!modelsOn) showModelsError("");
  modelsOn = true;
  if (!modelsData) mod.loading.hidden = false;
  refreshModels();
}

function leaveModels() {
  modelsOn = false;
  modelsToken += 1;
  clearTimeout(modelsTimer);
}

// Which view shows: its section, its link marked as the current page, the search box only in the library.
const PAGES = {
  library: { view: dup.library, nav: dup.navLibrary },
  duplicates: { view: dup.view, nav: dup.navDuplicates },
  models: { view: mod.view, nav: mod.nav },
};

function showPage(page) {
  for (const [name, p] of Object.entries(PAGES)) {
    p.view.hidden = name !== page;
    if (name === page) p.nav.setAttribute("aria-current", "page"); else p.nav.removeAttribute("aria-current");
  }
  const library = page === "library";
  el.form.hidden = !library;
  el.minBox.hidden = !library || !el.visual.checked;
  if (page !== "models") leaveModels();
  const title = { duplicates: TABS[dupTab].title, models: "Models" }[page] || el.heading.textContent;
  document.title = `${title} · visualsearch`;
}

// ---------------------------------------------------------------------------------------
// The address is the state (History API): each view has a URL, Back/Forward move between
// views, reload and shared links show the same view.
//   /                              the library            /?q=banana          filtered by name or tag
//   /?q=cold+night&visual=1        visual search          &min=0.25           minimum score
//   /?similar=42                   Find similar           /?image_url=https://example.com/a.jpg
//   /?similar=42&refine=at+night   Find similar, refined with words
//   /?view=duplicates              the Duplicates view    (/#/duplicates, the old address, still works)
//   /?view=duplicates&tab=similar  its Similar shots tab  /?view=duplicates&tab=trash   its Trash tab
//   /?view=models                  the Models view
// visual=1 also records the Visual switch in other views. A search with an uploaded file gets
// its own history entry (Back/Forward return to it while the page is open) but no address:
// reloaded, it shows the library. Anything unknown or invalid shows the library.
// A route: { page: "library"|"duplicates"|"models", tab ("copies"|"similar"|"trash"), kind, q, assetId, refine, url, file, visual, min }.

let current = null; // the route on screen
let pendingScroll = null; // where to scroll back to once enough of the grid has loaded
const files = new Map(); // history entry key -> File searched with (this page's lifetime only)
let fileSeq = 0;

const controls = () => ({ visual: el.visual.checked, min: Number(el.min.value) || 0 });

function parseRoute(search, hash = "") {
  const p = new URLSearchParams(search);
  const visual = p.get("visual") === "1";
  const base = { page: "library", kind: "library", q: "", visual, min: 0 };
  if (p.get("view") === "duplicates" || hash.startsWith("#/duplicates")) {
    const tab = ["similar", "trash"].includes(p.get("tab")) ? p.get("tab") : "copies"; // anything else: the first tab
    return { ...base, page: "duplicates", tab, visual: false };
  }
  if (p.get("view") === "models") return { ...base, page: "models", visual: false };
  const minText = (p.get("min") || "").trim();
  const m = Number(minText);
  const min = /^[0-9.]+$/.test(minText) && m > 0 && m <= 1 ? Math.round(m * 100) / 100 : 0;
  const similar = p.get("similar") || "";
  if (/^[1-9][0-9]{0,14}$/.test(similar)) {
    const refine = (p.get("refine") || "").trim().slice(0, 200);
    return { ...base, kind: "similar", assetId: Number(similar), refine, min };
  }
  const url = (p.get("image_url") || "").trim();
  if (/^https?:\/\/[^\s]+$/i.test(url) && url.length <= 4096) return { ...base, kind: "url", url, min };
  const q = (p.get("q") || "").trim().slice(0, 200);
  if (visual && q) return { ...base, kind: "text", q, min };
  return { ...base, q, min: visual ? min : 0 };
}

function urlFor(route) {
  const p = new URLSearchParams();
  if (route.page === "duplicates") {
    p.set("view", "duplicates");
    if (route.tab && route.tab !== "copies") p.set("tab", route.tab);
  } else if (route.page === "models") {
    p.set("view", "models");
  } else {
    if (route.kind === "similar") {
      p.set("similar", String(route.assetId));
      if (route.refine) p.set("refine", route.refine);
    }
    else if (route.kind === "url") p.set("image_url", route.url);
    else if ((route.kind === "library" || route.kind === "text") && route.q) p.set("q", route.q);
    if (route.visual) p.set("visual", "1");
    if (route.min > 0 && (route.visual || route.kind !== "library")) p.set("min", String(route.min));
  }
  const query = p.toString();
  return location.pathname + (query ? `?${query}` : "");
}

function routeFromLocation() {
  const route = parseRoute(location.search, location.hash);
  const key = history.state && history.state.file;
  if (route.page === "library" && key && files.has(key)) return { ...route, kind: "file", q: "", file: files.get(key) };
  return route;
}

// Writes the route into the session history. A tag ("typing", "min") folds a series of small
// changes into one entry; without one, going to the address already shown adds no entry.
function record(route, how, tag = null) {
  const url = urlFor(route);
  const was = history.state || {};
  const state = { tag };
  if (route.kind === "file") { fileSeq += 1; state.file = `${Date.now()}.${fileSeq}`; files.set(state.file, route.file); }
  const same = url === location.pathname + location.search + location.hash && !was.file && !state.file;
  if (same && tag && was.tag !== tag) return; // e.g. a space typed after a search: nothing new
  if (how === "replace" || same || (tag && was.tag === tag)) {
    history.replaceState({ ...state, scroll: was.scroll }, "", url);
  } else {
    history.replaceState({ ...was, scroll: window.scrollY }, ""); // to come back to the same place
    history.pushState(state, "", url);
  }
}

// how: "push" (a user action: a new history entry), "replace", or "restore" (load, Back/Forward:
// the address is already there; the controls are set from it).
function go(route, how = "push", tag = null) {
  clearTimeout(filterTimer);
  pendingScroll = null;
  if (how === "restore") {
    const url = urlFor(route);
    if (url !== location.pathname + location.search + location.hash) history.replaceState(history.state, "", url);
    if (history.state && history.state.scroll) pendingScroll = history.state.scroll;
  } else {
    record(route, how, tag);
  }
  if (tag !== "typing") setControls(route);
  current = route;
  hideMenu();
  for (const dialog of [el.imageDialog, el.assetDialog, el.confirmDialog]) if (dialog.open) dialog.close();
  if (tag !== "typing") window.scrollTo({ top: 0 });
  if (route.page !== "duplicates") { clearTimeout(copyRetry); dupToken += 1; } // left: its loads are not shown
  if (route.page === "duplicates") showDuplicates(route.tab);
  else if (route.page === "models") showModels();
  else if (route.kind === "similar") showSimilar(route.assetId, route.refine || "");
  else if (route.kind === "url") showUrlSearch(route.url);
  else if (route.kind === "file") showFileSearch(route.file);
  else { reset({ kind: route.kind, q: route.q }); loadMore(); }
  prefetched = null; // used by the search just started, or by none
  showPage(route.page); // after reset(): the title follows the heading
}

function setControls(route) {
  el.input.value = route.kind === "library" || route.kind === "text" ? route.q : "";
  el.refineInput.value = route.kind === "similar" ? route.refine || "" : "";
  el.visual.checked = route.visual;
  el.min.value = String(route.min);
  el.minValue.textContent = Number(el.min.value).toFixed(2);
  syncVisualMode();
}

function restoreScroll() {
  window.scrollTo({ top: pendingScroll });
  if (paging.done || window.scrollY >= pendingScroll - 1) pendingScroll = null;
}

window.addEventListener("popstate", () => go(routeFromLocation(), "restore"));

// The views' links are real addresses (a middle click opens a new tab); a plain click stays on the page.
for (const link of [dup.navLibrary, dup.navDuplicates, mod.nav, ...dup.tabs.querySelectorAll("a")]) {
  link.addEventListener("click", (event) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    go(parseRoute(new URL(link.href).search));
  });
}

// ---------------------------------------------------------------------------------------
history.scrollRestoration = "manual";
go(routeFromLocation(), "restore");
