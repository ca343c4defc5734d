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
  uploads: $("uploads"), uploadList: $("upload-list"), uploadsClose: $("uploads-close"),
  dropOverlay: $("drop-overlay"), toasts: $("toasts"),
};

// What the grid shows: the library (optionally filtered by name/tag) or search results.
// kind: "library" | "text" | "similar" | "url" | "file"
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
    if (response.status === 401) askForKey();
    throw new ApiError(response.status, error.code, error.message, error.details);
  }
  return body;
}

const postJson = (path, body) => api(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

// ---------------------------------------------------------------------------------------
// Rendering

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
  const more = document.createElement("button");
  more.type = "button";
  more.className = "icon-button menu-button";
  more.setAttribute("aria-label", `More actions for ${name}`);
  more.setAttribute("aria-haspopup", "menu");
  more.append(svg("dots"));
  more.addEventListener("click", (event) => {
    event.stopPropagation();
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

function toast(message, kind = "info") {
  const t = document.createElement("div");
  t.className = `toast ${kind}`;
  t.textContent = message;
  el.toasts.append(t);
  setTimeout(() => t.remove(), 5000);
}

function describeError(err) {
  const messages = {
    unsupported_image: "That file is not an image we can read.",
    invalid_image: "That image is corrupt or truncated, so it cannot be read.",
    too_large: "That image is over the 40 MB limit.",
    duplicate: "That image is already in the library.",
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
  } else {
    el.summary.textContent = `${n}${paging.done ? "" : "+"} results, best first`;
  }
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
  el.heading.textContent = {
    library: "Library", text: "Visual search", similar: "Similar images", url: "Search by image", file: "Search by image",
  }[view.kind];
  if (!searching) el.summary.textContent = "";
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
    showError(describeError(err));
    if (view.kind !== "library") el.summary.textContent = "";
  } finally {
    if (token === paging.token) {
      paging.busy = false;
      setBusy(false);
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

function fetchPage() {
  const limit = PAGE;
  const options = { limit, offset: paging.offset, min_score: minScore() };
  switch (view.kind) {
    case "library": {
      const params = new URLSearchParams({ limit });
      if (paging.cursor) params.set("cursor", paging.cursor);
      if (view.q) params.set("q", view.q);
      return api(`/api/assets?${params}`);
    }
    case "text": return postJson("/api/search", { text: view.q, ...options });
    case "similar": return postJson("/api/search", { asset_id: view.assetId, ...options });
    case "url": return postJson("/api/search", { image_url: view.url, ...options });
    case "file": {
      const form = new FormData();
      form.append("file", view.file, view.file.name);
      form.append("limit", String(limit));
      form.append("offset", String(paging.offset));
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
    strong.textContent = "No results";
    p.textContent = minScore() ? "Lower the minimum score to see more." : "Try other words or another image.";
  }
  el.empty.append(strong, p);
  el.empty.hidden = false;
}

new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting)) loadMore();
}, { rootMargin: "400px" }).observe(el.sentinel);

// ---------------------------------------------------------------------------------------
// Searching

function runSearch() {
  const q = el.input.value.trim();
  if (el.visual.checked) {
    if (!q) { el.input.focus(); return; }
    reset({ kind: "text", q });
  } else {
    reset({ kind: "library", q });
  }
  loadMore();
}

el.form.addEventListener("submit", (event) => { event.preventDefault(); runSearch(); });

let filterTimer;
el.input.addEventListener("input", () => {
  if (el.visual.checked) return; // visual search runs on Enter: each query costs a model call
  clearTimeout(filterTimer);
  filterTimer = setTimeout(runSearch, 250);
});

function syncVisualMode() {
  const on = el.visual.checked;
  el.minBox.hidden = !on;
  el.input.placeholder = on ? "Describe what you are looking for, e.g. “cold night”" : "Filter by file name or tag";
}
el.visual.addEventListener("change", () => {
  syncVisualMode();
  if (el.input.value.trim()) runSearch();
  el.input.focus();
});

el.min.addEventListener("input", () => { el.minValue.textContent = Number(el.min.value).toFixed(2); });
el.min.addEventListener("change", () => { if (view.kind !== "library") { reset({ ...view }); loadMore(); } });

function showReference(kind, name, src) {
  el.refKind.textContent = kind;
  el.refName.textContent = name;
  el.refImage.classList.remove("broken");
  if (src) el.refImage.src = src; else el.refImage.removeAttribute("src");
  el.refImage.alt = `Reference image: ${name}`;
}
el.refImage.addEventListener("error", () => el.refImage.classList.add("broken"));

function findSimilar(assetId) {
  const asset = assets.get(assetId);
  el.assetDialog.open && el.assetDialog.close();
  reset({ kind: "similar", assetId });
  showReference("Similar to", asset ? asset.name || asset.source : `asset ${assetId}`, asset && asset.thumbnail_url);
  loadMore();
  window.scrollTo({ top: 0 });
}

el.back.addEventListener("click", () => {
  el.input.value = "";
  reset({ kind: "library", q: "" });
  loadMore();
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
  el.imageDialog.close();
  reset({ kind: "url", url });
  // The browser loads the link itself only once the server has accepted it: a refused
  // address (private network, metadata service...) is never requested from the page either.
  showReference("Image from a link", url, null);
  loadMore().then(() => { if (view.kind === "url" && view.url === url && el.grid.children.length) el.refImage.src = url; });
});

function searchWithFile(file) {
  if (!file) return;
  if (file.size > MAX_BYTES) {
    el.imageError.textContent = `“${file.name}” is ${formatBytes(file.size)}; the limit is 40 MB.`;
    el.imageError.hidden = false;
    return;
  }
  el.imageDialog.close();
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
  menuAsset = assetId;
  menuReturnFocus = returnFocus;
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
  if (!confirm(`Remove “${name}” from the library?`)) return;
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
  renderTags(asset.tags);
  el.assetSimilar.onclick = () => findSimilar(id);
  el.tagsForm.onsubmit = async (event) => {
    event.preventDefault();
    const tags = el.tagsInput.value.split(",").map((t) => t.trim()).filter(Boolean);
    try {
      const saved = await api(`/api/assets/${id}/tags`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ tags }) });
      asset.tags = saved.tags;
      renderTags(saved.tags);
      toast("Tags saved");
    } catch (err) {
      toast(describeError(err), "error");
    }
  };
  el.assetDialog.showModal();
}

function renderTags(tags) {
  el.tagChips.replaceChildren(...tags.map((t) => { const s = document.createElement("span"); s.className = "chip"; s.textContent = t; return s; }));
  el.tagsInput.value = tags.join(", ");
}

// Clicking the backdrop closes a dialog.
for (const dialog of [el.imageDialog, el.assetDialog]) {
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

function pump() {
  while (running < 2 && queue.length) {
    running += 1;
    uploadOne(queue.shift()).finally(() => { running -= 1; pump(); });
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
        row.classList.add("done");
        state.textContent = "Added";
        bar.value = 100;
        if (view.kind === "library" && !view.q) {
          el.grid.prepend(card(asset));
          el.empty.hidden = true;
          total = (total || 0) + 1;
          updateSummary(total);
        }
      } else {
        const err = body && body.error ? body.error : { code: "http_" + xhr.status, message: `The server answered ${xhr.status}.` };
        if (xhr.status === 401) askForKey();
        let message = describeError(new ApiError(xhr.status, err.code, err.message, err.details));
        if (err.code === "duplicate" && err.details && err.details.asset_id) message = `Duplicate of asset #${err.details.asset_id} already in the library.`;
        fail(row, message);
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

function askForKey() {
  if (!el.keyDialog.open) { el.keyDialog.showModal(); el.keyInput.focus(); }
}

el.keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const key = el.keyInput.value.trim();
  if (!key) return;
  document.cookie = `${KEY_COOKIE}=${encodeURIComponent(key)}; path=/; SameSite=Strict; max-age=31536000`;
  el.keyDialog.close();
  reset({ ...view });
  loadMore();
});

// ---------------------------------------------------------------------------------------
// Duplicates view (#/duplicates)

const dup = {
  view: $("duplicates-view"), library: $("library-view"), list: $("dups-list"), summary: $("dups-summary"),
  empty: $("dups-empty"), loading: $("dups-loading"), error: $("dups-error"), more: $("dups-more"),
  trashAll: $("dups-trash-all"), navLibrary: $("nav-library"), navDuplicates: $("nav-duplicates"),
};
const KIND_LABEL = { exact_bytes: "Same file", same_pixels: "Same pixels", near_duplicate: "Near-duplicate" };
let dupOffset = 0;

function dupItem(member, keeper) {
  const asset = member.asset;
  assets.set(asset.id, asset);
  const div = document.createElement("div");
  div.className = "dup-item" + (keeper ? " keeper" : "");
  div.dataset.assetId = asset.id;
  const tag = document.createElement("span");
  tag.className = "tag";
  tag.textContent = keeper ? "Keep" : `${(member.similarity * 100).toFixed(0)}% similar`;
  const img = document.createElement("img");
  img.loading = "lazy";
  img.alt = asset.name || asset.source;
  if (asset.thumbnail_url) img.src = asset.thumbnail_url;
  img.addEventListener("click", () => openAsset(asset.id));
  const info = document.createElement("div");
  info.className = "info";
  const name = document.createElement("span"); name.className = "name"; name.textContent = asset.name || asset.source; name.title = asset.source;
  const size = document.createElement("span"); size.className = "muted";
  size.textContent = `${asset.width} × ${asset.height} · ${formatBytes(asset.byte_size)}`;
  const added = document.createElement("span"); added.className = "muted"; added.textContent = `Added ${new Date(asset.added_at).toLocaleDateString()}`;
  info.append(name, size, added);
  if (!keeper) {
    const kind = document.createElement("span"); kind.className = "kind"; kind.textContent = KIND_LABEL[member.kind] || member.kind;
    const pick = document.createElement("label"); pick.className = "pick";
    const box = document.createElement("input"); box.type = "checkbox"; box.checked = true; box.value = asset.id;
    box.setAttribute("aria-label", `Move ${asset.name || asset.source} to trash`);
    pick.append(box, "Move to trash");
    info.append(kind, pick);
  }
  div.append(tag, img, info);
  return div;
}

function dupGroup(group, n) {
  const li = document.createElement("li");
  li.className = "dup-group";
  const header = document.createElement("header");
  const h = document.createElement("h2"); h.textContent = `Group ${n} · ${group.size} images`;
  const spacer = document.createElement("span"); spacer.className = "spacer";
  const button = document.createElement("button"); button.type = "button"; button.className = "danger-button";
  button.append(svg("trash"), "Move selected to trash");
  button.addEventListener("click", () => trashIds(selectedIn(li), [li]));
  header.append(h, spacer, button);
  const row = document.createElement("div"); row.className = "dup-row";
  row.append(dupItem(group.keeper, true), ...group.others.map((m) => dupItem(m, false)));
  li.append(header, row);
  return li;
}

function selectedIn(root) {
  return [...root.querySelectorAll(".pick input:checked")].map((b) => Number(b.value));
}

async function trashIds(ids, groupNodes) {
  if (!ids.length) { toast("Nothing selected"); return; }
  if (!confirm(`Move ${ids.length} image${ids.length === 1 ? "" : "s"} to the trash folder? They can be restored with “visualsearch trash restore”.`)) return;
  try {
    const result = await postJson("/api/duplicates/trash", { asset_ids: ids });
    for (const node of groupNodes) {
      for (const id of ids) node.querySelector(`.dup-item[data-asset-id="${id}"]`)?.remove();
      if (node.querySelectorAll(".dup-item").length < 2) node.remove();
    }
    toast(`Moved ${result.moved.length} image${result.moved.length === 1 ? "" : "s"} to the trash (batch ${result.batch})`);
    if (!dup.list.children.length) loadDuplicates(true);
  } catch (err) {
    toast(describeError(err), "error");
  }
}

async function loadDuplicates(fresh) {
  if (fresh) { dupOffset = 0; dup.list.replaceChildren(); }
  dup.error.hidden = true;
  dup.loading.hidden = false;
  dup.more.hidden = true;
  try {
    const page = await api(`/api/duplicates?limit=20&offset=${dupOffset}`);
    page.items.forEach((g, i) => dup.list.append(dupGroup(g, dupOffset + i + 1)));
    dupOffset += page.items.length;
    dup.summary.textContent = page.total ? `${page.total} group${page.total === 1 ? "" : "s"} · ${page.extras} extra image${page.extras === 1 ? "" : "s"}` : "";
    dup.empty.hidden = page.total > 0;
    dup.trashAll.hidden = page.total === 0;
    dup.more.hidden = dupOffset >= page.total;
  } catch (err) {
    dup.error.textContent = describeError(err);
    dup.error.hidden = false;
  } finally {
    dup.loading.hidden = true;
  }
}

dup.more.addEventListener("click", () => loadDuplicates(false));
dup.trashAll.addEventListener("click", () => trashIds(selectedIn(dup.list), [...dup.list.children]));

function route() {
  const duplicates = location.hash.startsWith("#/duplicates");
  dup.view.hidden = !duplicates;
  dup.library.hidden = duplicates;
  el.form.hidden = duplicates;
  el.minBox.hidden = duplicates || !el.visual.checked;
  dup.navDuplicates.toggleAttribute("aria-current", duplicates);
  dup.navLibrary.toggleAttribute("aria-current", !duplicates);
  if (duplicates) { dup.navDuplicates.setAttribute("aria-current", "page"); document.title = "Duplicates · visualsearch"; loadDuplicates(true); }
  else { dup.navLibrary.setAttribute("aria-current", "page"); document.title = `${el.heading.textContent} · visualsearch`; }
}
window.addEventListener("hashchange", () => { route(); if (!location.hash.startsWith("#/duplicates")) { reset({ ...view }); loadMore(); } });

// ---------------------------------------------------------------------------------------
syncVisualMode();
reset({ kind: "library", q: "" });
route();
if (!location.hash.startsWith("#/duplicates")) loadMore();
