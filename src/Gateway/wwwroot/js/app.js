// OrleansChat web client: state, protocol handling (protocol.md v1) and rendering.
import { Connection, describeClose } from "./connection.js";
import * as fmt from "./format.js";
import * as store from "./store.js";

const PAGE = 50;            // history page when scrolling up (also the server's default join history)
const GAP_PAGE = 200;       // history page when catching up after a reconnect (the protocol's maximum)
const MAX_FRAME = 16000;    // stay under the gateway's 16 KiB frame limit, or it closes with 1009
const GROUP_MS = 5 * 60 * 1000;
const UNAVAILABLE_RETRIES = 3;

const $ = (id) => document.getElementById(id);
const el = {
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

/** @typedef {{seq:number,user:string,text:string,time:Date,id:string,node?:HTMLElement}} Msg */
/** @typedef {{id:string,text:string,time:Date,status:"pending"|"failed",error?:string,code?:string,tries:number,node?:HTMLElement}} Outgoing */

const state = {
  user: null,
  /** @type {Map<string, Room>} sidebar order */
  rooms: new Map(),
  active: null,
  connection: { state: "idle" },
  maxTextBytes: 4096,
};

class Room {
  constructor(name, readSeq) {
    this.name = name;
    this.joined = false;        // a `joined` reply arrived on the current connection
    this.joining = false;
    this.sinceSent = null;      // the `since` of the join in flight, to spot a server that lost its history
    this.loaded = false;        // had a `joined` reply in this page's life: rejoin with `since`
    /** @type {Map<number, Msg>} */
    this.msgs = new Map();
    this.knownSeq = 0;          // the highest seq the server told us exists
    this.lastSeq = 0;           // every message up to here (from the first one loaded) is in `msgs`
    this.oldestDone = false;    // the first message of the room is loaded
    this.olderInFlight = false;
    this.gapInFlight = false;
    this.historyQueue = [];     // kinds of the `history` requests in flight, in order ("before" | "after")
    this.members = new Set();
    this.notices = [];          // join/leave notices, each anchored after a seq
    /** @type {Outgoing[]} */
    this.outbox = [];
    this.readSeq = readSeq;     // unread = messages from others above this
    this.dirty = true;
    this.prepended = false;
    this.scrollFromBottom = 0;
    this.draft = "";
    this.navItem = null;
  }

  get oldestSeq() {
    let min = Infinity;
    for (const seq of this.msgs.keys()) if (seq < min) min = seq;
    return min;
  }

  get maxSeq() {
    let max = 0;
    for (const seq of this.msgs.keys()) if (seq > max) max = seq;
    return max;
  }

  unread(user) {
    let n = 0;
    for (const m of this.msgs.values()) if (m.seq > this.readSeq && m.user !== user) n++;
    return n;
  }
}

const connection = new Connection({
  url: (user) => `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws?user=${encodeURIComponent(user)}`,
  onEvent: handleEvent,
  onState: handleConnectionState,
});

// ---------------------------------------------------------------- persistence

function persist() {
  if (!state.user) return;
  const outbox = {};
  for (const room of state.rooms.values()) {
    if (room.outbox.length) {
      outbox[room.name] = room.outbox.map((o) => ({ id: o.id, text: o.text, time: o.time.toISOString(), failed: o.status === "failed" ? o.code : undefined }));
    }
  }
  const read = {};
  for (const room of state.rooms.values()) read[room.name] = room.readSeq;
  store.saveUserData(state.user, { rooms: [...state.rooms.keys()], active: state.active, read, outbox });
}

// ---------------------------------------------------------------- sign in / out

function signIn(name) {
  state.user = name;
  store.saveUserName(name);
  const data = store.loadUserData(name);
  state.rooms = new Map();
  for (const roomName of data.rooms) {
    if (!fmt.isValidRoom(roomName) || state.rooms.has(roomName)) continue;
    const room = new Room(roomName, Number.isInteger(data.read[roomName]) ? data.read[roomName] : 0);
    for (const o of data.outbox[roomName] ?? []) {
      if (typeof o?.id !== "string" || typeof o.text !== "string") continue;
      room.outbox.push({
        id: o.id, text: o.text, time: new Date(o.time), tries: 0,
        status: o.failed ? "failed" : "pending", code: o.failed, error: o.failed ? fmt.describeSendError(o.failed, state.maxTextBytes) : undefined,
      });
    }
    state.rooms.set(roomName, room);
  }
  state.active = data.active && state.rooms.has(data.active) ? data.active : (state.rooms.keys().next().value ?? null);
  el.meName.textContent = name;
  paintAvatar(el.meAvatar, name);
  el.signin.hidden = true;
  el.app.hidden = false;
  connection.start(name);
  render();
  (state.active ? el.composer : el.joinInput).focus();
}

function signOut() {
  connection.stop();
  store.saveUserName(null);
  state.user = null;
  state.rooms = new Map();
  state.active = null;
  el.roomList.replaceChildren();
  el.messages.replaceChildren();
  el.app.hidden = true;
  el.signin.hidden = false;
  el.nameInput.value = "";
  el.nameInput.focus();
}

// ---------------------------------------------------------------- connection and protocol

function handleConnectionState(s) {
  state.connection = s;
  if (s.state !== "online") {
    // Joins belong to a connection: after a drop, every room is joined again on the next `welcome`.
    for (const room of state.rooms.values()) {
      room.joined = room.joining = false;
      room.olderInFlight = room.gapInFlight = false;
      room.historyQueue = [];
    }
    const code = s.close?.code;
    if (s.state === "waiting" && (code === 1007 || code === 1008 || code === 1009 || code === 1011)) {
      toast(describeClose(code));
    }
  }
  renderStatus();
  scheduleRender();
}

function handleEvent(e) {
  switch (e.type) {
    case "welcome":
      for (const room of state.rooms.values()) sendJoin(room);
      break;
    case "joined": onJoined(e); break;
    case "message": onMessage(e); break;
    case "presence": onPresence(e); break;
    case "history": onHistory(e); break;
    case "error": onError(e); break;
    case "left": break;
    default: break; // unknown events are ignored (the protocol only ever adds)
  }
  scheduleRender();
}

function sendJoin(room) {
  const frame = { type: "join", room: room.name };
  // Within a page's life we know what we have: ask only for what came after it.
  if (room.loaded) frame.since = room.lastSeq;
  room.sinceSent = frame.since ?? null;
  room.joining = connection.send(frame);
}

function toMsg(m) {
  return { seq: m.seq, user: String(m.user), text: String(m.text), time: new Date(m.time), id: m.id };
}

/** Adds stored messages (deduplicated by seq) and moves `lastSeq` over every contiguous one. */
function addMessages(room, list) {
  for (const m of list ?? []) {
    if (!Number.isInteger(m?.seq) || room.msgs.has(m.seq)) continue;
    room.msgs.set(m.seq, toMsg(m));
    if (m.seq > room.knownSeq) room.knownSeq = m.seq;
    if (m.user === state.user) removeOutgoing(room, m.id);
    room.dirty = true;
  }
  while (room.msgs.has(room.lastSeq + 1)) room.lastSeq++;
}

function removeOutgoing(room, id) {
  const i = room.outbox.findIndex((o) => o.id === id);
  if (i >= 0) {
    room.outbox.splice(i, 1);
    room.dirty = true;
    persist();
  }
}

function onJoined(e) {
  const room = state.rooms.get(e.room);
  if (!room) return; // left while the join was in flight
  if (room.sinceSent !== null && e.seq < room.sinceSent) {
    // The room's seq went backwards: the server lost its history (an in-memory store restarted).
    // What we show would clash with the new seqs, so start this room over.
    resetRoom(room, e.seq);
    room.notices.push({ afterSeq: 0, text: "The server restarted without this room's history.", time: new Date() });
    sendJoin(room);
    return;
  }
  room.joined = true;
  room.joining = false;
  room.members = new Set(e.members ?? []);
  if (room.readSeq > e.seq) room.readSeq = e.seq; // the server's store was reset while the page was closed
  const fresh = room.sinceSent === null;
  addMessages(room, e.history);
  if (e.seq > room.knownSeq) room.knownSeq = e.seq;
  if (fresh) {
    // Without `since` the reply holds the latest messages: everything up to `seq` is accounted for.
    room.lastSeq = Math.max(room.lastSeq, e.seq);
    const history = e.history ?? [];
    room.oldestDone = e.seq === 0 || history.length < PAGE || history[0].seq <= 1;
    if (!room.loaded && room.readSeq === 0 && room.name === state.active) room.readSeq = e.seq;
  }
  room.loaded = true;
  room.dirty = true;
  fillGap(room);
  // Unsent messages go again with the same id: the server stores each id once.
  for (const o of room.outbox) if (o.status === "pending") transmit(room, o);
}

function onMessage(e) {
  const room = state.rooms.get(e.room);
  if (!room) return;
  addMessages(room, [e]);
  fillGap(room);
  if (e.user === state.user && room.name === state.active) stickToBottom = true;
}

/** Fetches what is missing between the last contiguous seq and the newest one known. */
function fillGap(room) {
  if (!room.joined || room.gapInFlight || room.knownSeq <= room.lastSeq) return;
  room.gapInFlight = true;
  room.historyQueue.push("after");
  connection.send({ type: "history", room: room.name, after: room.lastSeq, limit: GAP_PAGE });
}

function loadOlder(room) {
  if (!room || !room.joined || room.olderInFlight || room.oldestDone) return;
  const before = room.msgs.size ? room.oldestSeq : room.lastSeq + 1;
  if (before <= 1) { room.oldestDone = true; room.dirty = true; return; }
  room.olderInFlight = true;
  room.historyQueue.push("before");
  connection.send({ type: "history", room: room.name, before, limit: PAGE });
  renderHistoryEdge();
}

function onHistory(e) {
  const room = state.rooms.get(e.room);
  if (!room) return;
  const kind = room.historyQueue.shift();
  const list = Array.isArray(e.messages) ? e.messages : [];
  if (kind === "before") {
    room.olderInFlight = false;
    room.prepended = true;
    if (list.length < PAGE || list[0]?.seq <= 1) room.oldestDone = true;
    room.dirty = true;
  }
  addMessages(room, list);
  if (kind === "after") {
    room.gapInFlight = false;
    // A short page is the last one: nothing more exists up to knownSeq, so stop asking.
    if (list.length < GAP_PAGE && room.knownSeq > room.lastSeq) room.lastSeq = room.knownSeq;
    fillGap(room);
  }
}

function onPresence(e) {
  const room = state.rooms.get(e.room);
  if (!room || typeof e.user !== "string") return;
  if (e.event === "join") {
    if (room.members.has(e.user)) return;
    room.members.add(e.user);
    room.notices.push({ afterSeq: room.maxSeq, text: `${e.user} joined`, time: new Date() });
  } else if (e.event === "leave") {
    if (!room.members.delete(e.user)) return;
    room.notices.push({ afterSeq: room.maxSeq, text: `${e.user} left`, time: new Date() });
  }
  room.dirty = true;
}

function onError(e) {
  if (typeof e.id === "string") {
    const found = findOutgoing(e.id, e.room);
    if (found) {
      sendFailed(found.room, found.item, e.code);
      return;
    }
  }
  const room = typeof e.room === "string" ? state.rooms.get(e.room) : soleJoiningRoom();
  if (room && room.joining && !room.joined && (e.code === "bad_room" || e.code === "bad_request")) {
    // A join refused: a name the server does not accept, or too many rooms at once.
    removeRoom(room);
    toast(e.code === "bad_room"
      ? `Could not join #${room.name}: ${fmt.describeError(e)}`
      : `Could not join #${room.name}. You may be in too many rooms at once; leave one first.`);
    return;
  }
  if (room && e.code === "not_joined") {
    // The server forgot this connection's join (it should not, but rejoining is always safe).
    room.joined = false;
    sendJoin(room);
    return;
  }
  toast(fmt.describeError(e));
}

function soleJoiningRoom() {
  const joining = [...state.rooms.values()].filter((r) => r.joining && !r.joined);
  return joining.length === 1 ? joining[0] : null;
}

function findOutgoing(id, roomName) {
  const rooms = roomName && state.rooms.has(roomName) ? [state.rooms.get(roomName)] : state.rooms.values();
  for (const room of rooms) {
    const item = room.outbox.find((o) => o.id === id);
    if (item) return { room, item };
  }
  return null;
}

function sendFailed(room, item, code) {
  if (code === "unavailable" && item.tries < UNAVAILABLE_RETRIES) {
    // The message may or may not be stored: resending the same id is always safe.
    item.tries++;
    setTimeout(() => { if (room.outbox.includes(item) && item.status === "pending") transmit(room, item); }, 1000 * 2 ** item.tries);
    return;
  }
  if (code === "not_joined") {
    room.joined = false;
    sendJoin(room); // the join's reply resends every pending message
    return;
  }
  item.status = "failed";
  item.code = code;
  item.error = fmt.describeSendError(code, state.maxTextBytes);
  room.dirty = true;
  persist();
}

// ---------------------------------------------------------------- user actions

function joinRoom(name) {
  let room = state.rooms.get(name);
  if (!room) {
    room = new Room(name, 0);
    state.rooms.set(name, room);
    if (connection.isOpen) sendJoin(room);
  }
  setActive(name);
}

function leaveRoom(room) {
  if (room.joined || room.joining) connection.send({ type: "leave", room: room.name });
  const names = [...state.rooms.keys()];
  const i = names.indexOf(room.name);
  removeRoom(room);
  if (state.active === room.name || state.active === null) {
    const rest = [...state.rooms.keys()];
    setActive(rest[Math.min(i, rest.length - 1)] ?? null);
  }
}

function removeRoom(room) {
  state.rooms.delete(room.name);
  room.navItem?.remove();
  if (state.active === room.name) state.active = null;
  persist();
  scheduleRender();
}

function setActive(name) {
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

function sendMessage(text) {
  const room = state.rooms.get(state.active);
  if (!room) return;
  const item = { id: fmt.newId(), text, time: new Date(), status: "pending", tries: 0 };
  room.outbox.push(item);
  room.dirty = true;
  persist();
  stickToBottom = true;
  transmit(room, item);
  scheduleRender();
}

function transmit(room, item) {
  const frame = { type: "send", room: room.name, text: item.text, id: item.id };
  if (fmt.utf8Length(JSON.stringify(frame)) > MAX_FRAME) {
    // The gateway would close the whole connection (1009) for a frame this big: refuse it here.
    sendFailed(room, item, "too_large");
    return;
  }
  // Not joined yet (connecting, reconnecting): it stays pending and goes out after `joined`.
  if (room.joined) connection.send(frame);
}

function retry(room, item) {
  item.status = "pending";
  item.error = item.code = undefined;
  item.tries = 0;
  room.dirty = true;
  persist();
  transmit(room, item);
  scheduleRender();
}

function discard(room, item) {
  room.outbox.splice(room.outbox.indexOf(item), 1);
  room.dirty = true;
  persist();
  scheduleRender();
}

// ---------------------------------------------------------------- rendering

let renderQueued = false;
let renderedRoom = null;
let stickToBottom = true;

function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  // A microtask, not requestAnimationFrame: it also runs in a background tab (title, unread counts).
  queueMicrotask(() => { renderQueued = false; render(); });
}

function render() {
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
    loadOlder(room); // the loaded page does not fill the view: there is nothing to scroll yet
  }
}

function renderRooms() {
  el.roomsEmpty.hidden = state.rooms.size > 0;
  const items = [];
  for (const room of state.rooms.values()) {
    if (!room.navItem) {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "room-item";
      button.dataset.testid = "room";
      button.dataset.room = room.name;
      button.innerHTML = '<span class="room-hash" aria-hidden="true">#</span><span class="room-label"></span><span class="badge" hidden></span>';
      button.querySelector(".room-label").textContent = room.name;
      button.addEventListener("click", () => setActive(room.name));
      li.append(button);
      room.navItem = li;
    }
    const button = room.navItem.firstChild;
    const active = room.name === state.active;
    const unread = active && document.visibilityState === "visible" ? 0 : room.unread(state.user);
    const badge = button.querySelector(".badge");
    badge.hidden = unread === 0;
    badge.textContent = unread > 99 ? "99+" : String(unread);
    button.classList.toggle("has-unread", unread > 0);
    button.classList.toggle("active", active);
    if (active) button.setAttribute("aria-current", "page"); else button.removeAttribute("aria-current");
    button.setAttribute("aria-label", `${room.name}${unread ? `, ${unread} unread` : ""}`);
    items.push(room.navItem);
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

function renderStatus() {
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

function isNearBottom() {
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
    const node = msg.node ?? (msg.node = messageNode(msg));
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

function renderHistoryEdge() {
  const room = state.rooms.get(state.active);
  el.historyEdge.textContent = !room ? "" :
    room.olderInFlight ? "Loading older messages…" :
    room.oldestDone && room.loaded ? `This is the beginning of #${room.name}.` : "";
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
  const li = item.node ?? (item.node = document.createElement("li"));
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
      status.append(actionButton("Edit", () => { discard(room, item); el.composer.value = item.text; autosize(); el.composer.focus(); }));
    } else {
      status.append(actionButton("Retry", () => retry(room, item)));
    }
    status.append(actionButton("Discard", () => discard(room, item)));
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

function paintAvatar(node, name) {
  node.textContent = fmt.initials(name);
  node.style.setProperty("--hue", String(fmt.userHue(name)));
}

function updateJump() {
  el.jump.hidden = el.timeline.scrollHeight - el.timeline.scrollTop - el.timeline.clientHeight < 400;
  const room = state.rooms.get(state.active);
  el.jump.textContent = room && room.unread(state.user) > 0 ? "New messages ↓" : "Jump to latest ↓";
}

let toastId = 0;
function toast(text) {
  const div = document.createElement("div");
  div.className = "toast";
  div.textContent = text;
  div.id = `toast-${++toastId}`;
  el.toasts.append(div);
  setTimeout(() => div.remove(), 7000);
}

// ---------------------------------------------------------------- layout helpers

const wide = window.matchMedia("(min-width: 1100px)");

function closeDrawers() {
  el.app.classList.remove("sidebar-open", "members-open");
  el.openSidebar.setAttribute("aria-expanded", "false");
  el.scrim.hidden = true;
  syncMembersToggle();
}

function syncMembersToggle() {
  const shown = wide.matches ? !el.app.classList.contains("members-collapsed") : el.app.classList.contains("members-open");
  el.toggleMembers.setAttribute("aria-expanded", String(shown));
  el.toggleMembers.setAttribute("aria-label", shown ? "Hide members" : "Show members");
}

function autosize() {
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

// ---------------------------------------------------------------- wiring

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
el.composer.addEventListener("input", autosize);
el.composerForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const text = el.composer.value;
  if (!text.trim()) return;
  el.composer.value = "";
  autosize();
  sendMessage(text);
  el.composer.focus();
});

el.timeline.addEventListener("scroll", () => {
  const room = state.rooms.get(state.active);
  if (room && el.timeline.scrollTop < 300) loadOlder(room);
  updateJump();
  if (room && isNearBottom() && room.readSeq < room.maxSeq) scheduleRender();
}, { passive: true });
el.jump.addEventListener("click", () => { el.timeline.scrollTo({ top: el.timeline.scrollHeight, behavior: "smooth" }); });

el.leave.addEventListener("click", () => {
  const room = state.rooms.get(state.active);
  if (room) leaveRoom(room);
});
el.signout.addEventListener("click", signOut);
el.retryNow.addEventListener("click", () => connection.retryNow());

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

const saved = store.loadUserName();
if (saved && fmt.isValidUser(saved)) {
  signIn(saved);
} else {
  el.signin.hidden = false;
  el.nameInput.focus();
}
