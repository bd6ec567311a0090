// Frames in and out (protocol.md, version 1): one handler per server event type, and every frame the
// page sends. State changes go through state.js; the DOM is render.js's business.
import { refusedByGateway, requestToken } from "./auth.js";
import { Connection, describeClose } from "./connection.js";
import * as fmt from "./format.js";
import { followLatest, scheduleRender, showRoom, toast } from "./render.js";
import { Room, addEvents, findOutgoing, persist, removeRoom, state } from "./state.js";
import { announceAgain, shouldAnnounce, startedTyping, stoppedTyping } from "./typing.js";
import { markRead, readDue, readElsewhere, readSent, storedRead } from "./unread.js";

export const PAGE = 50;     // history page when scrolling up (also the server's default join history)
const GAP_PAGE = 200;       // history page when catching up after a reconnect (the protocol's maximum)
const MAX_FRAME = 16000;    // stay under the gateway's 16 KiB frame limit, or it closes with 1009
const UNAVAILABLE_RETRIES = 3;

const connection = new Connection({
  url: (user) => `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws?${state.token
    ? `access_token=${encodeURIComponent(state.token)}` : `user=${encodeURIComponent(user)}`}`,
  onEvent: handleEvent,
  onState: handleConnectionState,
  refused: () => refusedByGateway(state.token),
  // A token the gateway refuses has expired (or was revoked); no token at all: the gateway is in jwt mode.
  onRefused: () => endSession(state.token ? "expired" : "signin"),
});

export const connect = (user) => {
  state.session = null;
  connection.start(user);
};
export const disconnect = () => connection.stop();
export const retryNow = () => connection.retryNow();
/** The "Reconnect" button after the server closed the session: the same user, the same rooms, with `since`. */
export const reconnect = () => connect(state.user);

/** The token's `exp` passed: end the session here before the gateway refuses the next reconnect. */
export function tokenExpired() {
  connection.stop();
  endSession("expired");
}

/**
 * The session is over until someone acts: "expired" and "signin" wait for a token from the application
 * (asked for here, see auth.js), "closed" for the user's "Reconnect". render.js says which.
 */
function endSession(kind) {
  state.session = kind;
  if (kind !== "closed") requestToken(state.user);
  scheduleRender();
}

function handleConnectionState(s) {
  state.connection = s;
  if (s.state !== "online") {
    // Joins belong to a connection: after a drop, every room is joined again on the next `welcome`.
    for (const room of state.rooms.values()) {
      room.joined = room.joining = false;
      room.olderInFlight = room.gapInFlight = false;
      room.historyQueue = [];
      room.typing.clear();
    }
    if (s.state === "closed") endSession("closed");
    const code = s.close?.code;
    if (s.state === "waiting" && (code === 1007 || code === 1008 || code === 1009 || code === 1011)) {
      toast(describeClose(code));
    }
  }
  scheduleRender();
}

// ---------------------------------------------------------------- server → client

const handlers = {
  welcome() {
    for (const room of state.rooms.values()) sendJoin(room);
  },

  joined(e) {
    const room = state.rooms.get(e.room);
    if (!room) return; // left while the join was in flight
    if (room.sinceSent !== null && e.seq < room.sinceSent) {
      // The room's seq went backwards: the server lost its history (an in-memory store restarted).
      // What we show would clash with the new seqs, so start this room over.
      room.reset(e.seq);
      room.notices.push({ afterSeq: 0, text: "The server restarted without this room's history.", time: new Date() });
      sendJoin(room);
      return;
    }
    room.joined = true;
    room.joining = false;
    room.members = new Set(e.members ?? []);
    if (room.readSeq > e.seq) room.readSeq = e.seq; // the server's store was reset while the page was closed
    if (Number.isInteger(e.read)) {
      state.additions = true;
      storedRead(room, e.read);
    }
    const fresh = room.sinceSent === null;
    addEvents(room, e.history);
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
    // Unsent messages, edits and deletions go again with the same id: the server applies each id once.
    for (const o of room.outbox) if (o.status === "pending") transmit(room, o);
    for (const op of room.ops) transmitOp(room, op);
    flushRead(room);
  },

  message(e) {
    const room = stored(e);
    if (!room) return;
    stoppedTyping(room, e.user);
    if (e.user === state.user && room.name === state.active) followLatest();
  },

  // Edits and deletions change the message they target (state.js, addEvents); they are not lines of their own.
  edit: stored,
  delete: stored,

  typing(e) {
    const room = state.rooms.get(e.room);
    if (room && typeof e.user === "string") startedTyping(room, e.user, Date.now());
  },

  read(e) {
    const room = state.rooms.get(e.room);
    if (!room || !Number.isInteger(e.seq)) return;
    readElsewhere(room, e.seq);
    persist();
  },

  presence(e) {
    const room = state.rooms.get(e.room);
    if (!room || typeof e.user !== "string") return;
    if (e.event === "join") {
      if (room.members.has(e.user)) return;
      room.members.add(e.user);
      room.notices.push({ afterSeq: room.maxSeen, text: `${e.user} joined`, time: new Date() });
    } else if (e.event === "leave") {
      if (!room.members.delete(e.user)) return;
      room.notices.push({ afterSeq: room.maxSeen, text: `${e.user} left`, time: new Date() });
    }
    room.dirty = true;
  },

  left(e) {
    // The answer to one's own `leave` finds the room gone already; a kick (server API) does not.
    const room = state.rooms.get(e.room);
    if (!room || e.reason !== "kicked") return;
    room.joined = room.joining = false;
    dropRoom(room);
    toast(`You were removed from #${room.name}.`, "kicked");
  },

  history(e) {
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
    addEvents(room, list);
    if (kind === "after") {
      room.gapInFlight = false;
      // A short page is the last one: nothing more exists up to knownSeq, so stop asking.
      if (list.length < GAP_PAGE && room.knownSeq > room.lastSeq) room.lastSeq = room.knownSeq;
      fillGap(room);
    }
  },

  error(e) {
    if (typeof e.id === "string") {
      const found = findOutgoing(e.id, e.room);
      if (found?.item) {
        sendFailed(found.room, found.item, e.code);
        return;
      }
      if (found?.op) {
        opFailed(found.room, found.op, e.code);
        return;
      }
    }
    const room = typeof e.room === "string" ? state.rooms.get(e.room) : soleJoiningRoom();
    if (room && room.joining && !room.joined && (e.code === "bad_room" || e.code === "bad_request" || e.code === "forbidden")) {
      // A join refused: a name the server does not accept, too many rooms at once, or not allowed (the
      // token's `rooms` claim, or a ban).
      dropRoom(room);
      toast(e.code === "bad_request" ? `Could not join #${room.name}. You may be in too many rooms at once; leave one first.`
        : e.code === "forbidden" ? `You may not join #${room.name}.`
        : `Could not join #${room.name}: ${fmt.describeError(e)}`, e.code);
      return;
    }
    if (room && e.code === "not_joined") {
      // The server forgot this connection's join (it should not, but rejoining is always safe).
      room.joined = false;
      sendJoin(room);
      return;
    }
    toast(fmt.describeError(e));
  },
};

/** A stored event (message, edit or delete) live: into the room, then fetch any gap before it. */
function stored(e) {
  const room = state.rooms.get(e.room);
  if (!room) return null;
  addEvents(room, [e]);
  fillGap(room);
  return room;
}

function handleEvent(e) {
  // Unknown events are ignored: the protocol only ever adds.
  if (Object.hasOwn(handlers, e.type)) handlers[e.type](e);
  scheduleRender();
}

/** Takes a room the server will not have us in off the sidebar, showing the first one left if it was in view. */
function dropRoom(room) {
  const shown = state.active === room.name;
  removeRoom(room);
  if (shown) showRoom(state.rooms.keys().next().value ?? null);
}

function soleJoiningRoom() {
  const joining = [...state.rooms.values()].filter((r) => r.joining && !r.joined);
  return joining.length === 1 ? joining[0] : null;
}

// ---------------------------------------------------------------- client → server

function sendJoin(room) {
  const frame = { type: "join", room: room.name };
  // Within a page's life we know what we have: ask only for what came after it.
  if (room.loaded) frame.since = room.lastSeq;
  room.sinceSent = frame.since ?? null;
  room.joining = connection.send(frame);
}

/** Fetches what is missing between the last contiguous seq and the newest one known. */
function fillGap(room) {
  if (!room.joined || room.gapInFlight || room.knownSeq <= room.lastSeq) return;
  room.gapInFlight = true;
  room.historyQueue.push("after");
  connection.send({ type: "history", room: room.name, after: room.lastSeq, limit: GAP_PAGE });
}

export function loadOlder(room) {
  if (!room || !room.joined || room.olderInFlight || room.oldestDone) return;
  const before = room.seqs.size ? room.minSeen : room.lastSeq + 1;
  if (before <= 1) { room.oldestDone = true; room.dirty = true; return; }
  room.olderInFlight = true;
  room.historyQueue.push("before");
  connection.send({ type: "history", room: room.name, before, limit: PAGE });
  scheduleRender();
}

/** Joins `name` (once); true when the room is new to the page. */
export function joinRoom(name) {
  if (state.rooms.has(name)) return false;
  const room = new Room(name, 0);
  state.rooms.set(name, room);
  if (connection.isOpen) sendJoin(room);
  return true;
}

export function leaveRoom(room) {
  if (room.joined || room.joining) connection.send({ type: "leave", room: room.name });
  room.joined = room.joining = false; // nothing more goes out for it (a read mark on its timer)
  removeRoom(room);
}

export function sendMessage(text) {
  const room = state.rooms.get(state.active);
  if (!room) return;
  const item = { id: fmt.newId(), text, time: new Date(), status: "pending", tries: 0 };
  room.outbox.push(item);
  room.dirty = true;
  announceAgain(room);
  persist();
  followLatest();
  transmit(room, item);
  scheduleRender();
}

/** Sends a client frame that carries an `id`, unless it is too big; false when it is. */
function sendWithId(room, frame) {
  // The gateway would close the whole connection (1009) for a frame this big: refuse it here.
  if (fmt.utf8Length(JSON.stringify(frame)) > MAX_FRAME) return false;
  // Not joined yet (connecting, reconnecting): it stays pending and goes out after `joined`.
  if (room.joined) connection.send(frame);
  return true;
}

function transmit(room, item) {
  if (!sendWithId(room, { type: "send", room: room.name, text: item.text, id: item.id })) sendFailed(room, item, "too_large");
}

/**
 * The answer to an `unavailable` or `not_joined` error, the same for a message, an edit or a delete:
 * true when it is handled (resent later, or after joining again).
 */
function retryLater(room, entry, code, resend) {
  if (code === "unavailable" && entry.tries < UNAVAILABLE_RETRIES) {
    // It may or may not be stored: resending the same id is always safe.
    entry.tries++;
    setTimeout(resend, 1000 * 2 ** entry.tries);
    return true;
  }
  if (code === "not_joined") {
    room.joined = false;
    sendJoin(room); // the join's reply resends everything pending
    return true;
  }
  return false;
}

function sendFailed(room, item, code) {
  if (retryLater(room, item, code, () => { if (room.outbox.includes(item) && item.status === "pending") transmit(room, item); })) return;
  item.status = "failed";
  item.code = code;
  item.error = fmt.describeSendError(code, state.maxTextBytes);
  room.dirty = true;
  persist();
}

export function retry(room, item) {
  item.status = "pending";
  item.error = item.code = undefined;
  item.tries = 0;
  room.dirty = true;
  persist();
  transmit(room, item);
  scheduleRender();
}

export function discard(room, item) {
  room.outbox.splice(room.outbox.indexOf(item), 1);
  room.dirty = true;
  persist();
  scheduleRender();
}

// ---------------------------------------------------------------- edits, deletions, typing, read marks

/** Edits one of the user's own messages; the page shows the new text until the server acknowledges it. */
export function editMessage(room, seq, text) {
  queueOp(room, { kind: "edit", id: fmt.newId(), target: seq, text, tries: 0 });
}

export function deleteMessage(room, seq) {
  queueOp(room, { kind: "delete", id: fmt.newId(), target: seq, tries: 0 });
}

function queueOp(room, op) {
  room.ops.push(op);
  room.dirty = true;
  persist();
  transmitOp(room, op);
  scheduleRender();
}

function transmitOp(room, op) {
  const frame = op.kind === "edit"
    ? { type: "edit", room: room.name, seq: op.target, text: op.text, id: op.id }
    : { type: "delete", room: room.name, seq: op.target, id: op.id };
  if (!sendWithId(room, frame)) opFailed(room, op, "too_large");
}

function opFailed(room, op, code) {
  if (retryLater(room, op, code, () => { if (room.ops.includes(op)) transmitOp(room, op); })) return;
  // Nothing to retry by hand: the message shows what the server holds again, and a notice says why.
  room.ops.splice(room.ops.indexOf(op), 1);
  room.dirty = true;
  persist();
  toast(fmt.describeOpError(op.kind, code, state.maxTextBytes));
}

/** The user is typing in the composer of `room`. */
export function announceTyping(room) {
  if (!room?.joined || !state.additions || !shouldAnnounce(room, Date.now())) return;
  connection.send({ type: "typing", room: room.name });
}

/** The user has seen the latest of `room` (open, visible, at the bottom): raise the read mark. */
export function sawLatest(room) {
  if (markRead(room)) persist();
  flushRead(room);
}

/** Tells the server the room's read mark, if it does not hold it yet; at most once a second per room. */
function flushRead(room) {
  if (!room.joined || !state.additions || room.readTimer) return;
  const now = Date.now();
  const due = readDue(room, now);
  if (due?.waitMs) {
    room.readTimer = setTimeout(() => { room.readTimer = 0; flushRead(room); }, due.waitMs);
  } else if (due && connection.send({ type: "read", room: room.name, seq: due.seq })) {
    readSent(room, due.seq, now);
  }
}
