// OrleansChat web client: the wiring. What the user does (sign in, join, type, scroll, click) goes to
// protocol.js (frames to the server) and render.js (the screen); state.js holds what the page knows.
// A token from the embedding application (jwt mode) signs in without a name: see auth.js for how it is
// handed over, and for `orleanschat:token-expired` and `window.orleansChat.setToken`.
import { readClaims, stopWatchingExpiry, takeToken, tokenInHash, watchExpiry } from "./auth.js";
import * as fmt from "./format.js";
import * as protocol from "./protocol.js";
import { autosize, closeDrawers, el, initRender, isNearBottom, paintAvatar, render, scheduleRender, showRoom, syncMembersToggle, updateJump, wide } from "./render.js";
import { load, state, unload } from "./state.js";
import { loadUserName } from "./store.js";

initRender({
  retry: protocol.retry,
  discard: protocol.discard,
  loadOlder: protocol.loadOlder,
  sawLatest: protocol.sawLatest,
  editMessage: protocol.editMessage,
  deleteMessage: protocol.deleteMessage,
});

function signIn(name, { remember = true, connect = true } = {}) {
  load(name, { remember });
  el.meName.textContent = name;
  paintAvatar(el.meAvatar, name);
  el.signin.hidden = true;
  el.app.hidden = false;
  if (connect) protocol.connect(name);
  render();
  (state.active ? el.composer : el.joinInput).focus();
}

function signOut() {
  protocol.disconnect();
  stopWatchingExpiry();
  unload();
  el.signout.hidden = false;
  el.roomList.replaceChildren();
  el.messages.replaceChildren();
  el.app.hidden = true;
  el.signin.hidden = false;
  el.nameInput.value = "";
  el.nameInput.focus();
}

/**
 * Signs in with a token from the application, or goes on with a new one for the same user (reconnecting
 * and rejoining every room with `since`). False when it is not a JWT with a valid `sub`.
 */
function useToken(token) {
  const claims = typeof token === "string" ? readClaims(token) : null;
  if (!claims || !fmt.isValidUser(claims.sub)) return false;
  if (state.user && state.user !== claims.sub) signOut(); // another person: their own rooms and marks
  state.token = token;
  el.signout.hidden = true; // the name comes from the application, not from this page
  const expired = claims.exp !== null && claims.exp * 1000 <= Date.now();
  if (!state.user) signIn(claims.sub, { remember: false, connect: !expired });
  else if (!expired) protocol.connect(state.user);
  watchExpiry(claims.exp, protocol.tokenExpired);
  return true;
}

window.orleansChat = Object.freeze({ setToken: useToken });
window.addEventListener("hashchange", () => {
  const token = tokenInHash();
  if (token) useToken(token);
});

function joinRoom(name) {
  protocol.joinRoom(name);
  showRoom(name);
}

function leaveRoom(room) {
  const names = [...state.rooms.keys()];
  const i = names.indexOf(room.name);
  protocol.leaveRoom(room);
  scheduleRender();
  if (state.active === room.name || state.active === null) {
    const rest = [...state.rooms.keys()];
    showRoom(rest[Math.min(i, rest.length - 1)] ?? null);
  }
}

el.composerHint.dataset.default = el.composerHint.innerHTML;

el.signinForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const name = el.nameInput.value.trim();
  if (!fmt.isValidUser(name)) {
    el.nameError.textContent = name ? "Use 1–32 letters, digits, “-”, “_” or “.” (no spaces)." : "Please enter a name.";
    el.nameInput.setAttribute("aria-invalid", "true");
    el.nameInput.focus();
    return;
  }
  el.nameError.textContent = "";
  el.nameInput.removeAttribute("aria-invalid");
  signIn(name);
});

el.joinForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const name = el.joinInput.value.trim().replace(/^#/, "");
  if (!fmt.isValidRoom(name)) {
    el.joinError.textContent = name ? "Room names use 1–64 letters, digits, “-”, “_” or “.”." : "Type a room name.";
    el.joinInput.setAttribute("aria-invalid", "true");
    return;
  }
  el.joinError.textContent = "";
  el.joinInput.removeAttribute("aria-invalid");
  el.joinInput.value = "";
  joinRoom(name);
});
el.joinInput.addEventListener("input", () => { el.joinError.textContent = ""; el.joinInput.removeAttribute("aria-invalid"); });

for (const chip of document.querySelectorAll("[data-suggest]")) {
  chip.addEventListener("click", () => joinRoom(chip.dataset.suggest));
}

el.composer.addEventListener("keydown", (e) => {
  // Enter sends, Shift+Enter is a new line; never send while an IME is composing.
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
    e.preventDefault();
    el.composerForm.requestSubmit();
  }
});
el.composer.addEventListener("input", () => {
  autosize();
  if (el.composer.value.trim()) protocol.announceTyping(state.rooms.get(state.active));
});
el.composerForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const text = el.composer.value;
  if (!text.trim()) return;
  el.composer.value = "";
  autosize();
  protocol.sendMessage(text);
  el.composer.focus();
});

el.timeline.addEventListener("scroll", () => {
  const room = state.rooms.get(state.active);
  if (room && el.timeline.scrollTop < 300) protocol.loadOlder(room);
  updateJump();
  if (room && isNearBottom() && room.readSeq < room.lastSeq) scheduleRender(); // reached the newest: mark read
}, { passive: true });
el.jump.addEventListener("click", () => { el.timeline.scrollTo({ top: el.timeline.scrollHeight, behavior: "smooth" }); });

el.leave.addEventListener("click", () => {
  const room = state.rooms.get(state.active);
  if (room) leaveRoom(room);
});
el.signout.addEventListener("click", signOut);
el.retryNow.addEventListener("click", protocol.retryNow);
el.reconnect.addEventListener("click", protocol.reconnect);

el.openSidebar.addEventListener("click", () => {
  el.app.classList.add("sidebar-open");
  el.openSidebar.setAttribute("aria-expanded", "true");
  el.scrim.hidden = false;
  el.joinInput.focus();
});
el.closeSidebar.addEventListener("click", () => { closeDrawers(); el.openSidebar.focus(); });
el.toggleMembers.addEventListener("click", () => {
  if (wide.matches) {
    // Wide screens show members beside the chat; the button folds the column away.
    el.app.classList.toggle("members-collapsed");
  } else {
    const open = !el.app.classList.contains("members-open");
    closeDrawers();
    el.app.classList.toggle("members-open", open);
    el.scrim.hidden = !open;
  }
  syncMembersToggle();
});
el.closeMembers.addEventListener("click", () => { closeDrawers(); el.toggleMembers.focus(); });
el.scrim.addEventListener("click", closeDrawers);
document.addEventListener("keydown", (e) => { if (e.key === "Escape") closeDrawers(); });
document.addEventListener("visibilitychange", () => scheduleRender());
wide.addEventListener("change", closeDrawers);

const saved = loadUserName();
if (useToken(takeToken())) {
  // jwt mode: signed in as the token's user
} else if (saved && fmt.isValidUser(saved)) {
  signIn(saved);
} else {
  el.signin.hidden = false;
  el.nameInput.focus();
}
