// Everything on screen: the sidebar, header, timeline (with the inline editor), typing indicator,
// members, status, toasts and layout. It reads state.js and draws; what a click asks of the server
// goes through the actions app.js hands in.
import { describeClose } from "./connection.js";
import * as fmt from "./format.js";
import { pendingOp, persist, state } from "./state.js";
import { nextExpiry, typingLabel, typingNames } from "./typing.js";
import { badgeText, unreadCount } from "./unread.js";

const GROUP_MS = 5 * 60 * 1000;

const $ = (id) => document.getElementById(id);
export const el = {
  signin: $("signin"), signinForm: $("signin-form"), nameInput: $("name-input"), nameError: $("name-error"),
  app: $("app"), sidebar: $("sidebar"), joinForm: $("join-form"), joinInput: $("join-input"), joinError: $("join-error"),
  roomList: $("room-list"), roomsEmpty: $("rooms-empty"), meName: $("me-name"), meAvatar: $("me-avatar"),
  signout: $("signout"), openSidebar: $("open-sidebar"), closeSidebar: $("close-sidebar"), mobileUnread: $("mobile-unread"),
  roomName: $("room-name"), roomSub: $("room-sub"), status: $("status"), statusText: $("status-text"), retryNow: $("retry-now"),
  toggleMembers: $("toggle-members"), closeMembers: $("close-members"), leave: $("leave-room"),
  timeline: $("timeline"), historyEdge: $("history-edge"), messages: $("messages"), emptyRoom: $("empty-room"), jump: $("jump"),
  composerForm: $("composer-form"), composer: $("composer"), send: $("send"), composerHint: $("composer-hint"),
  members: $("members"), memberList: $("member-list"), scrim: $("scrim"), toasts: $("toasts"),
  typing: $("typing"), typingText: $("typing-text"),
  session: $("session"), sessionText: $("session-text"), reconnect: $("reconnect"),
};

/** Why the session ended (state.session), in the banner above the timeline. */
const SESSION_TEXT = {
  expired: "Your session has expired. Waiting for a new sign-in from your application…",
  signin: "This chat needs a sign-in from your application.",
  closed: "The server closed this session.",
};

/** What the page asks of the server (protocol.js); set once by app.js. */
let actions = { retry() {}, discard() {}, loadOlder() {}, sawLatest() {}, editMessage() {}, deleteMessage() {} };

export function initRender(handlers) {
  actions = handlers;
}

/** DOM nodes drawn for messages, outbox items and sidebar rooms, kept so a redraw reuses them. */
const nodes = new WeakMap();

/** The message being edited in place: {room, seq, draft}, or null. */
let editing = null;

/** Touch screens have no hover: a long press (contextmenu) shows a message's actions instead. */
const noHover = window.matchMedia("(hover: none)");

let renderQueued = false;
let renderedRoom = null;
let stickToBottom = true;

export function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  // A microtask, not requestAnimationFrame: it also runs in a background tab (title, unread counts).
  queueMicrotask(() => { renderQueued = false; render(); });
}

export function render() {
  if (!state.user) return;
  const room = state.rooms.get(state.active) ?? null;
  renderTimeline(room);
  // Read means seen: the room is open, the page visible and the list at its newest message.
  if (room && document.visibilityState === "visible" && isNearBottom()) actions.sawLatest(room);
  renderRooms();
  renderHeader(room);
  renderTyping(room);
  renderMembers(room);
  renderStatus();
  renderSession();
  const unread = [...state.rooms.values()].reduce((n, r) => n + shownUnread(r).count, 0);
  document.title = unread ? `(${unread}) OrleansChat` : room ? `#${room.name} · OrleansChat` : "OrleansChat";
  el.mobileUnread.hidden = !unread;
  if (room && !room.olderInFlight && !room.oldestDone && el.timeline.scrollHeight <= el.timeline.clientHeight + 200) {
    actions.loadOlder(room); // the loaded page does not fill the view: there is nothing to scroll yet
  }
}

// ---------------------------------------------------------------- sidebar, header, members, status

/** The room in view counts nothing while the page is visible: its messages are in front of the user. */
function shownUnread(room) {
  return room.name === state.active && document.visibilityState === "visible" ? { count: 0, more: false } : unreadCount(room, state.user);
}

function roomItem(room) {
  const li = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "room-item";
  button.dataset.testid = "room";
  button.dataset.room = room.name;
  button.innerHTML = '<span class="room-hash" aria-hidden="true">#</span><span class="room-label"></span><span class="badge" data-testid="unread" hidden></span>';
  button.querySelector(".room-label").textContent = room.name;
  button.addEventListener("click", () => showRoom(room.name));
  li.append(button);
  return li;
}

function renderRooms() {
  el.roomsEmpty.hidden = state.rooms.size > 0;
  const items = [];
  for (const room of state.rooms.values()) {
    const li = nodeOf(room, "", () => roomItem(room));
    const button = li.firstChild;
    const active = room.name === state.active;
    const unread = shownUnread(room);
    const text = badgeText(unread);
    const badge = button.querySelector(".badge");
    badge.hidden = !text;
    badge.textContent = text;
    button.classList.toggle("has-unread", !!text);
    button.classList.toggle("active", active);
    if (active) button.setAttribute("aria-current", "page"); else button.removeAttribute("aria-current");
    button.setAttribute("aria-label", `${room.name}${text ? `, ${unread.more ? "more than " : ""}${unread.count} unread` : ""}`);
    items.push(li);
  }
  // Only re-insert when the order changed: moving a focused button would lose keyboard focus.
  const current = [...el.roomList.children];
  if (current.length !== items.length || current.some((node, i) => node !== items[i])) el.roomList.replaceChildren(...items);
}

function renderHeader(room) {
  el.roomName.textContent = room ? `# ${room.name}` : "No room selected";
  const online = state.connection.state === "online";
  el.app.classList.toggle("offline", !online);
  el.roomSub.textContent = !room ? "" :
    room.joined ? `${room.members.size} ${room.members.size === 1 ? "member" : "members"}` :
    online ? "Joining…" : "Offline: messages are sent when the connection is back";
  el.leave.hidden = !room;
  el.toggleMembers.hidden = !room;
  el.composer.disabled = !room;
  el.send.disabled = !room;
  el.composer.placeholder = room ? `Message #${room.name}` : "Join a room to send messages";
  el.emptyRoom.hidden = !!room;
}

function renderMembers(room) {
  const names = room ? [...room.members].sort((a, b) => (a === state.user ? -1 : b === state.user ? 1 : a.localeCompare(b))) : [];
  const items = names.map((name) => {
    const li = h("li", "member");
    li.dataset.testid = "member";
    li.append(avatarNode(name, "avatar small"), h("span", "member-name", name));
    if (name === state.user) li.append(h("span", "you", "you"));
    return li;
  });
  el.memberList.replaceChildren(...items);
}

export function renderStatus() {
  const s = state.connection;
  let text;
  let kind;
  switch (s.state) {
    case "online": text = "Connected"; kind = "online"; break;
    case "connecting": text = "Connecting…"; kind = "connecting"; break;
    case "reconnecting": text = "Reconnecting…"; kind = "reconnecting"; break;
    case "waiting": {
      const seconds = Math.max(1, Math.ceil((s.retryAt - Date.now()) / 1000));
      text = `Offline · retrying in ${seconds} s`;
      kind = "reconnecting";
      break;
    }
    case "closed": text = "Disconnected"; kind = "idle"; break;
    default: text = "Not connected"; kind = "idle";
  }
  el.status.dataset.state = kind;
  el.statusText.textContent = text;
  el.status.title = s.state === "closed" ? SESSION_TEXT.closed : s.close ? describeClose(s.close.code) : s.state === "online" && s.gateway ? `Connected to ${s.gateway}` : "";
  el.retryNow.hidden = s.state !== "waiting";
}
function renderSession() {
  el.session.hidden = !state.session;
  el.session.dataset.kind = state.session ?? "";
  el.sessionText.textContent = SESSION_TEXT[state.session] ?? "";
  el.reconnect.hidden = state.session !== "closed";
}

setInterval(() => { if (state.connection.state === "waiting") renderStatus(); }, 1000);

// ---------------------------------------------------------------- timeline

export function isNearBottom() {
  return el.timeline.scrollHeight - el.timeline.scrollTop - el.timeline.clientHeight < 80;
}

function renderTimeline(room) {
  if (!room) {
    el.messages.replaceChildren();
    el.historyEdge.textContent = "";
    el.jump.hidden = true;
    renderedRoom = null;
    return;
  }
  const switched = renderedRoom !== room;
  if (!switched && !room.dirty) { renderHistoryEdge(); return; }
  const atBottom = switched ? room.scrollFromBottom === 0 : isNearBottom();
  const fromBottom = switched ? room.scrollFromBottom : el.timeline.scrollHeight - el.timeline.scrollTop;

  const nodes = [];
  let prev = null;
  let prevDay = null;
  const pushDay = (date) => {
    const key = fmt.dayKey(date);
    if (key === prevDay) return;
    prevDay = key;
    prev = null;
    const li = document.createElement("li");
    li.className = "day";
    li.setAttribute("role", "separator");
    li.textContent = fmt.formatDay(date);
    nodes.push(li);
  };
  const notices = room.notices;
  let n = 0;
  const pushNotice = (notice) => {
    const li = document.createElement("li");
    li.className = "notice";
    li.textContent = notice.text;
    li.title = fmt.formatFull(notice.time);
    nodes.push(li);
    prev = null;
  };
  const seqs = [...room.msgs.keys()].sort((a, b) => a - b);
  for (const seq of seqs) {
    while (n < notices.length && notices[n].afterSeq < seq) pushNotice(notices[n++]);
    const msg = room.msgs.get(seq);
    pushDay(msg.time);
    const node = messageNode(room, msg);
    node.classList.toggle("grouped", isGrouped(prev, msg));
    nodes.push(node);
    prev = msg;
  }
  while (n < notices.length) pushNotice(notices[n++]);
  for (const item of room.outbox) {
    pushDay(item.time);
    const node = outgoingNode(room, item);
    node.classList.toggle("grouped", isGrouped(prev, { user: state.user, time: item.time }));
    nodes.push(node);
    prev = { user: state.user, time: item.time };
  }
  reconcile(el.messages, nodes);
  room.dirty = false;
  renderedRoom = room;
  renderHistoryEdge();

  if (atBottom || stickToBottom) {
    el.timeline.scrollTop = el.timeline.scrollHeight;
  } else if (switched || room.prepended) {
    el.timeline.scrollTop = el.timeline.scrollHeight - fromBottom; // keep what the user was reading in place
  }
  room.prepended = false;
  stickToBottom = false;
  updateJump();
}

function renderHistoryEdge() {
  const room = state.rooms.get(state.active);
  el.historyEdge.textContent = !room ? "" :
    room.olderInFlight ? "Loading older messages…" :
    room.oldestDone && room.loaded ? `This is the beginning of #${room.name}.` : "";
}

/**
 * Puts `list` into `parent` in order, removing what is gone and moving only what changed place: a
 * node that stays where it was keeps keyboard focus (the inline editor, a message's menu).
 */
function reconcile(parent, list) {
  const keep = new Set(list);
  for (const child of [...parent.children]) if (!keep.has(child)) child.remove();
  let cursor = parent.firstChild;
  for (const node of list) {
    if (node === cursor) cursor = cursor.nextSibling;
    else parent.insertBefore(node, cursor);
  }
}

/** The node drawn for `item`, drawn again by `create` when `key` (what it shows) changed. */
function nodeOf(item, key, create) {
  const cached = nodes.get(item);
  if (cached?.key === key) return cached.node;
  const node = create();
  nodes.set(item, { key, node });
  return node;
}

function isGrouped(prev, msg) {
  return !!prev && prev.user === msg.user && msg.time - prev.time < GROUP_MS;
}

// ---------------------------------------------------------------- one message: its text, "edited", "message deleted"; its menu and the inline editor

/** A stored message as it stands: its (edited) text, or the "message deleted" placeholder, or the editor. */
function messageNode(room, msg) {
  const own = msg.user === state.user;
  const op = own && !msg.deleted ? pendingOp(room, msg.seq) : null;
  if (msg.deleted && editing?.room === room.name && editing.seq === msg.seq) editing = null;
  const isEditing = editing?.room === room.name && editing.seq === msg.seq;
  return nodeOf(msg, `${msg.rev} ${op?.id} ${isEditing} ${state.additions}`, () => {
    const li = h("li", own ? "msg own" : "msg");
    li.dataset.testid = "message";
    li.dataset.seq = String(msg.seq);
    let bubble;
    if (msg.deleted) {
      // The text is not hidden but gone: the node is drawn anew without it.
      li.classList.add("deleted");
      bubble = h("div", "msg-text msg-deleted", "message deleted");
      bubble.dataset.testid = "deleted";
    } else if (isEditing) {
      li.classList.add("editing");
      bubble = editorNode(room, msg);
    } else {
      bubble = textBubble(op?.kind === "edit" ? op.text : msg.text);
    }
    const body = fillMessage(li, msg.user, msg.time, bubble);
    if (msg.edited && !msg.deleted && !isEditing) {
      const mark = h("span", "msg-edited", "edited");
      mark.dataset.testid = "edited";
      mark.title = `Edited ${fmt.formatFull(msg.editTime)}`;
      body.append(mark);
    }
    if (op) {
      li.classList.add("pending");
      body.append(h("div", "msg-state", op.kind === "edit" ? "Saving…" : "Deleting…"));
    }
    if (own && !msg.deleted && !isEditing && op?.kind !== "delete" && state.additions) {
      li.append(messageMenu(room, msg));
      li.addEventListener("contextmenu", (e) => {
        if (!noHover.matches) return;
        e.preventDefault();
        li.classList.toggle("show-actions");
      });
    }
    return li;
  });
}

const PENCIL = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 20h4L19 9l-4-4L4 16z"/><path d="M13.5 6.5l4 4"/></svg>';
const TRASH = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3"/></svg>';

/** Edit and Delete of one's own message: shown on hover, keyboard focus or a long press. */
function messageMenu(room, msg) {
  const menu = h("div", "msg-actions");
  menu.setAttribute("role", "group");
  menu.setAttribute("aria-label", "Message actions");
  menu.append(
    iconButton("message-edit", "Edit message", PENCIL, () => startEdit(room, msg)),
    iconButton("message-delete", "Delete message", TRASH, () => actions.deleteMessage(room, msg.seq)));
  return menu;
}

function iconButton(testid, label, svg, onClick) {
  const b = h("button", "icon-btn msg-action");
  b.type = "button";
  b.dataset.testid = testid;
  b.setAttribute("aria-label", label);
  b.title = label;
  b.innerHTML = svg; // a constant above, never text from the server
  b.addEventListener("click", onClick);
  return b;
}

/** What the message shows now: the text of an edit still on its way, else the stored text. */
function shownText(room, msg) {
  const op = pendingOp(room, msg.seq);
  return op?.kind === "edit" ? op.text : msg.text;
}

function startEdit(room, msg) {
  editing = { room: room.name, seq: msg.seq, draft: shownText(room, msg) };
  room.dirty = true;
  render();
  const input = el.messages.querySelector('[data-testid="edit-input"]');
  if (!input) return;
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
  sizeEditor(input);
}

/** Closes the editor; with `save`, sends the new text if there is one and it changed. */
function endEdit(room, msg, save) {
  const text = editing?.draft ?? "";
  editing = null;
  room.dirty = true;
  if (save && text.trim() && text !== shownText(room, msg)) actions.editMessage(room, msg.seq, text);
  render();
  // Back to where the user was: the message's own Edit button (or the composer if it has none now).
  const button = el.messages.querySelector(`[data-seq="${msg.seq}"] [data-testid="message-edit"]`);
  (button ?? el.composer).focus();
}

function editorNode(room, msg) {
  const form = h("form", "msg-edit");
  const input = h("textarea", "edit-input");
  input.dataset.testid = "edit-input";
  input.rows = 1;
  input.value = editing.draft;
  input.setAttribute("aria-label", "Edit message");
  input.addEventListener("input", () => { editing.draft = input.value; sizeEditor(input); });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      endEdit(room, msg, false);
    } else if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      endEdit(room, msg, true);
    }
  });
  form.addEventListener("submit", (e) => { e.preventDefault(); endEdit(room, msg, true); });
  const hint = h("div", "msg-edit-hint");
  hint.append(h("span", "muted", "Enter to save, Esc to cancel"),
    actionButton("Save", () => endEdit(room, msg, true)), actionButton("Cancel", () => endEdit(room, msg, false)));
  form.append(input, hint);
  return form;
}

function sizeEditor(input) {
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
}

function textBubble(text) {
  const bubble = h("div", "msg-text");
  fmt.appendLinkified(bubble, text);
  return bubble;
}

function fillMessage(li, user, time, bubble) {
  const when = h("time", "", fmt.formatTime(time));
  when.dateTime = time.toISOString();
  when.title = fmt.formatFull(time);
  const head = h("div", "msg-head");
  head.append(h("span", "msg-user", user), " ", when);
  const body = h("div", "msg-body");
  body.append(head, bubble);
  li.append(avatarNode(user, "avatar"), body);
  return body;
}

/** An element with a class and optional text (always as text, never as HTML). */
function h(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function avatarNode(name, className) {
  const node = h("span", className);
  node.setAttribute("aria-hidden", "true");
  paintAvatar(node, name);
  return node;
}

function outgoingNode(room, item) {
  const li = nodeOf(item, "", () => document.createElement("li"));
  li.replaceChildren();
  li.className = `msg own ${item.status}`;
  li.dataset.testid = "message";
  li.dataset.id = item.id;
  const body = fillMessage(li, state.user, item.time, textBubble(item.text));
  const status = document.createElement("div");
  status.className = "msg-state";
  if (item.status === "pending") {
    status.textContent = room.joined ? "Sending…" : "Waiting for connection…";
  } else {
    status.setAttribute("role", "alert");
    const reason = document.createElement("span");
    reason.textContent = item.error ?? "Not sent.";
    status.append(reason);
    if (item.code === "too_large") {
      status.append(actionButton("Edit", () => { actions.discard(room, item); el.composer.value = item.text; autosize(); el.composer.focus(); }));
    } else {
      status.append(actionButton("Retry", () => actions.retry(room, item)));
    }
    status.append(actionButton("Discard", () => actions.discard(room, item)));
  }
  body.append(status);
  return li;
}

function actionButton(label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "link-btn";
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}

export function paintAvatar(node, name) {
  node.textContent = fmt.initials(name);
  node.style.setProperty("--hue", String(fmt.userHue(name)));
}

// ---------------------------------------------------------------- typing indicator, jump button, toasts

export function updateJump() {
  el.jump.hidden = el.timeline.scrollHeight - el.timeline.scrollTop - el.timeline.clientHeight < 400;
  const room = state.rooms.get(state.active);
  el.jump.textContent = room && unreadCount(room, state.user).count > 0 ? "New messages ↓" : "Jump to latest ↓";
}

let typingTimer = 0;

/** "alice is typing…" under the list of the room in view; drawn again when the next name runs out. */
function renderTyping(room) {
  const now = Date.now();
  const names = room ? typingNames(room, now) : [];
  const text = typingLabel(names);
  // Only a real change touches the live region, so a screen reader does not repeat it.
  if (el.typingText.textContent !== text) el.typingText.textContent = text;
  el.typing.classList.toggle("active", names.length > 0);
  clearTimeout(typingTimer);
  const next = room ? nextExpiry(room) : null;
  if (next !== null) typingTimer = setTimeout(scheduleRender, Math.max(0, next - now) + 50);
}

let toastId = 0;
/** A passing notice; `kind` (e.g. "forbidden", "kicked") marks it for tests and styles. */
export function toast(text, kind) {
  const div = document.createElement("div");
  div.className = "toast";
  div.dataset.testid = "toast";
  if (kind) div.dataset.kind = kind;
  div.textContent = text;
  div.id = `toast-${++toastId}`;
  el.toasts.append(div);
  setTimeout(() => div.remove(), 7000);
}

// ---------------------------------------------------------------- layout helpers

export const wide = window.matchMedia("(min-width: 1100px)");

export function closeDrawers() {
  el.app.classList.remove("sidebar-open", "members-open");
  el.openSidebar.setAttribute("aria-expanded", "false");
  el.scrim.hidden = true;
  syncMembersToggle();
}

export function syncMembersToggle() {
  const shown = wide.matches ? !el.app.classList.contains("members-collapsed") : el.app.classList.contains("members-open");
  el.toggleMembers.setAttribute("aria-expanded", String(shown));
  el.toggleMembers.setAttribute("aria-label", shown ? "Hide members" : "Show members");
}

export function autosize() {
  el.composer.style.height = "auto";
  el.composer.style.height = `${Math.min(el.composer.scrollHeight, 200)}px`;
  const bytes = fmt.utf8Length(el.composer.value);
  el.composerHint.classList.toggle("over", bytes > state.maxTextBytes);
  if (bytes > state.maxTextBytes * 0.8) {
    el.composerHint.textContent = `${bytes.toLocaleString()} / ${state.maxTextBytes.toLocaleString()} bytes`;
  } else if (el.composerHint.dataset.default) {
    el.composerHint.innerHTML = el.composerHint.dataset.default;
  }
}

/** Shows room `name` (or none): remembers the previous room's scroll position and draft. */
export function showRoom(name) {
  const previous = state.rooms.get(state.active);
  if (previous && previous.name !== name) {
    previous.scrollFromBottom = el.timeline.scrollHeight - el.timeline.scrollTop;
    previous.draft = el.composer.value;
  }
  if (previous?.name !== name) {
    const next = state.rooms.get(name);
    el.composer.value = next?.draft ?? "";
    autosize();
    renderedRoom = null;
    editing = null;
  }
  state.active = name;
  closeDrawers();
  persist();
  render();
  if (name) el.composer.focus();
}

/** The next redraw scrolls to the newest message (the user just sent one). */
export function followLatest() {
  stickToBottom = true;
}
