// Everything on screen: the sidebar, header, timeline, members, status, toasts and layout. It reads
// state.js and draws; what a click asks of the server goes through the actions app.js hands in.
import { describeClose } from "./connection.js";
import * as fmt from "./format.js";
import { persist, state } from "./state.js";

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
};

/** What the timeline's buttons ask for; set once by app.js. */
let actions = { retry() {}, discard() {}, loadOlder() {} };

export function initRender(handlers) {
  actions = handlers;
}

/** DOM nodes drawn for messages, outbox items and sidebar rooms, kept so a redraw reuses them. */
const nodes = new WeakMap();

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
  if (room && document.visibilityState === "visible" && isNearBottom() && room.readSeq < room.maxSeq) {
    room.readSeq = room.maxSeq;
    persist();
  }
  renderRooms();
  renderHeader(room);
  renderMembers(room);
  renderStatus();
  const unread = [...state.rooms.values()].reduce((n, r) => n + (r.name === state.active && document.visibilityState === "visible" ? 0 : r.unread(state.user)), 0);
  document.title = unread ? `(${unread}) OrleansChat` : room ? `#${room.name} · OrleansChat` : "OrleansChat";
  el.mobileUnread.hidden = !unread;
  if (room && !room.olderInFlight && !room.oldestDone && el.timeline.scrollHeight <= el.timeline.clientHeight + 200) {
    actions.loadOlder(room); // the loaded page does not fill the view: there is nothing to scroll yet
  }
}

function renderRooms() {
  el.roomsEmpty.hidden = state.rooms.size > 0;
  const items = [];
  for (const room of state.rooms.values()) {
    let li = nodes.get(room);
    if (!li) {
      li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "room-item";
      button.dataset.testid = "room";
      button.dataset.room = room.name;
      button.innerHTML = '<span class="room-hash" aria-hidden="true">#</span><span class="room-label"></span><span class="badge" hidden></span>';
      button.querySelector(".room-label").textContent = room.name;
      button.addEventListener("click", () => showRoom(room.name));
      li.append(button);
      nodes.set(room, li);
    }
    const button = li.firstChild;
    const active = room.name === state.active;
    const unread = active && document.visibilityState === "visible" ? 0 : room.unread(state.user);
    const badge = button.querySelector(".badge");
    badge.hidden = unread === 0;
    badge.textContent = unread > 99 ? "99+" : String(unread);
    button.classList.toggle("has-unread", unread > 0);
    button.classList.toggle("active", active);
    if (active) button.setAttribute("aria-current", "page"); else button.removeAttribute("aria-current");
    button.setAttribute("aria-label", `${room.name}${unread ? `, ${unread} unread` : ""}`);
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
    default: text = "Not connected"; kind = "idle";
  }
  el.status.dataset.state = kind;
  el.statusText.textContent = text;
  el.status.title = s.close ? describeClose(s.close.code) : s.state === "online" && s.gateway ? `Connected to ${s.gateway}` : "";
  el.retryNow.hidden = s.state !== "waiting";
}
setInterval(() => { if (state.connection.state === "waiting") renderStatus(); }, 1000);

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
    const node = nodeOf(msg, messageNode);
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
  el.messages.replaceChildren(...nodes);
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

export function renderHistoryEdge() {
  const room = state.rooms.get(state.active);
  el.historyEdge.textContent = !room ? "" :
    room.olderInFlight ? "Loading older messages…" :
    room.oldestDone && room.loaded ? `This is the beginning of #${room.name}.` : "";
}

function nodeOf(item, create) {
  let node = nodes.get(item);
  if (!node) nodes.set(item, node = create(item));
  return node;
}

function isGrouped(prev, msg) {
  return !!prev && prev.user === msg.user && msg.time - prev.time < GROUP_MS;
}

function messageNode(msg) {
  const li = document.createElement("li");
  li.className = "msg";
  li.dataset.testid = "message";
  li.dataset.seq = String(msg.seq);
  if (msg.user === state.user) li.classList.add("own");
  fillMessage(li, msg.user, msg.text, msg.time);
  return li;
}

function fillMessage(li, user, text, time) {
  const when = h("time", "", fmt.formatTime(time));
  when.dateTime = time.toISOString();
  when.title = fmt.formatFull(time);
  const head = h("div", "msg-head");
  head.append(h("span", "msg-user", user), " ", when);
  const bubble = h("div", "msg-text");
  fmt.appendLinkified(bubble, text);
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
  const li = nodeOf(item, () => document.createElement("li"));
  li.replaceChildren();
  li.className = `msg own ${item.status}`;
  li.dataset.testid = "message";
  li.dataset.id = item.id;
  const body = fillMessage(li, state.user, item.text, item.time);
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

export function updateJump() {
  el.jump.hidden = el.timeline.scrollHeight - el.timeline.scrollTop - el.timeline.clientHeight < 400;
  const room = state.rooms.get(state.active);
  el.jump.textContent = room && room.unread(state.user) > 0 ? "New messages ↓" : "Jump to latest ↓";
}

let toastId = 0;
export function toast(text) {
  const div = document.createElement("div");
  div.className = "toast";
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
