// What the page knows: the signed-in user, the joined rooms, each room's stored events (messages with
// their edits and deletions applied) and what the user asked for that the server has not acknowledged
// yet. No DOM and no socket in here.
import * as fmt from "./format.js";
import * as store from "./store.js";

/**
 * A stored message as it stands now. `rev` rises with every change, so the page knows to redraw it.
 * @typedef {{seq:number,user:string,text:string,time:Date,id:string,edited:boolean,editSeq:number,editTime?:Date,deleted:boolean,rev:number}} Msg
 */
/** @typedef {{id:string,text:string,time:Date,status:"pending"|"failed",error?:string,code?:string,tries:number}} Outgoing */
/** An edit or delete of one's own message, not acknowledged yet. @typedef {{kind:"edit"|"delete",id:string,target:number,text?:string,tries:number}} Op */
/** An edit or delete whose target message is not loaded yet. @typedef {{edit?:object,deleted?:boolean}} PendingMod */

export const state = {
  user: null,
  /** The JWT the page connects with (jwt mode), in memory only; null in open mode. See auth.js. */
  token: null,
  /** Why the session ended and waits for someone to act: "expired" | "signin" | "closed", or null. */
  session: null,
  /** @type {Map<string, Room>} sidebar order */
  rooms: new Map(),
  active: null,
  connection: { state: "idle" },
  maxTextBytes: 4096,
  // The gateway speaks the additions to version 1 (edit, delete, typing, read): its `joined` carries
  // `read`. Until one does, the page sends none of those frames (an older gateway would refuse them).
  additions: false,
};

export class Room {
  constructor(name, readSeq) {
    this.name = name;
    this.joined = false;        // a `joined` reply arrived on the current connection
    this.joining = false;
    this.sinceSent = null;      // the `since` of the join in flight, to spot a server that lost its history
    this.loaded = false;        // had a `joined` reply in this page's life: rejoin with `since`
    /** @type {Map<number, Msg>} */
    this.msgs = new Map();
    this.seqs = new Set();      // the seq of every stored event loaded: messages, edits and deletions
    /** @type {Map<number, PendingMod>} by target seq */
    this.pendingMods = new Map();
    this.minSeen = Infinity;    // the lowest and highest seq in `seqs`
    this.maxSeen = 0;
    this.knownSeq = 0;          // the highest seq the server told us exists
    this.lastSeq = 0;           // every stored event up to here (from the first one loaded) is in `seqs`
    this.oldestDone = false;    // the first message of the room is loaded
    this.olderInFlight = false;
    this.gapInFlight = false;
    this.historyQueue = [];     // kinds of the `history` requests in flight, in order ("before" | "after")
    this.members = new Set();
    this.notices = [];          // join/leave notices, each anchored after a seq
    /** @type {Outgoing[]} */
    this.outbox = [];
    /** @type {Op[]} */
    this.ops = [];
    this.readSeq = readSeq;     // read up to here (stored on the server or read on this page): see unread.js
    this.readSent = 0;          // the highest read seq the server is known to hold (sent or received)
    this.readSentAt = 0;
    this.readTimer = 0;
    /** @type {Map<string, number>} user → when their indicator goes out (ms); see typing.js */
    this.typing = new Map();
    this.typingSentAt = 0;
    this.dirty = true;          // the timeline needs drawing again
    this.prepended = false;     // older messages came in above: keep the reader's place
    this.scrollFromBottom = 0;
    this.draft = "";
  }

  /** Forgets every stored event: the server's seq went backwards (its store was reset). */
  reset(seq) {
    this.msgs = new Map();
    this.seqs = new Set();
    this.pendingMods = new Map();
    this.minSeen = Infinity;
    this.knownSeq = this.lastSeq = this.maxSeen = 0;
    this.loaded = this.oldestDone = false;
    this.notices = [];
    this.readSeq = Math.min(this.readSeq, seq);
    this.readSent = Math.min(this.readSent, seq);
    this.dirty = true;
  }
}

/**
 * Adds stored events, live or from any page of history in any order, deduplicated by seq, and moves
 * `lastSeq` over every contiguous one. This is the one place where a `message`, `edit` or `delete`
 * changes what the room shows; the events themselves are never shown as lines of their own.
 */
export function addEvents(room, list) {
  for (const e of list ?? []) {
    if (!Number.isInteger(e?.seq) || room.seqs.has(e.seq)) continue;
    room.seqs.add(e.seq);
    if (e.seq < room.minSeen) room.minSeen = e.seq;
    if (e.seq > room.maxSeen) room.maxSeen = e.seq;
    if (e.seq > room.knownSeq) room.knownSeq = e.seq;
    switch (e.type ?? "message") {
      case "message": addMessage(room, e); break;
      case "edit": case "delete": modify(room, e); break;
      default: break; // a kind of stored event this page does not know: it still counts for seq
    }
    if (e.user === state.user && typeof e.id === "string") settle(room, e.id);
    room.dirty = true;
  }
  while (room.seqs.has(room.lastSeq + 1)) room.lastSeq++;
}

function addMessage(room, e) {
  /** @type {Msg} */
  const msg = { seq: e.seq, user: String(e.user), text: String(e.text), time: new Date(e.time), id: e.id, edited: false, editSeq: 0, deleted: false, rev: 0 };
  room.msgs.set(e.seq, msg);
  // Its edits and deletion may have come first (live, by `since` recovery, or in a newer page).
  const pending = room.pendingMods.get(e.seq);
  if (pending) {
    room.pendingMods.delete(e.seq);
    if (pending.edit) applyEdit(msg, pending.edit);
    if (pending.deleted) applyDelete(msg);
  }
}

function modify(room, e) {
  if (!Number.isInteger(e.target)) return;
  const msg = room.msgs.get(e.target);
  if (msg) {
    if (e.type === "delete") applyDelete(msg); else applyEdit(msg, e);
    return;
  }
  // The message is in a page not loaded yet: keep the newest edit and any deletion until it comes.
  const pending = room.pendingMods.get(e.target) ?? {};
  if (e.type === "delete") pending.deleted = true;
  else if (!pending.edit || e.seq > pending.edit.seq) pending.edit = e;
  room.pendingMods.set(e.target, pending);
}

/** An edit counts only if it is newer than the one shown; a deleted message stays deleted. */
function applyEdit(msg, e) {
  if (msg.deleted || e.seq <= msg.editSeq) return;
  msg.text = String(e.text);
  msg.edited = true;
  msg.editSeq = e.seq;
  msg.editTime = new Date(e.time);
  msg.rev++;
}

function applyDelete(msg) {
  if (msg.deleted) return;
  msg.deleted = true;
  msg.text = ""; // gone from memory too, not only from the page
  msg.rev++;
}

/** The server acknowledged one of ours (a message, edit or delete): it is no longer pending. */
function settle(room, id) {
  const i = room.outbox.findIndex((o) => o.id === id);
  if (i >= 0) room.outbox.splice(i, 1);
  const j = room.ops.findIndex((o) => o.id === id);
  if (j >= 0) room.ops.splice(j, 1);
  if (i >= 0 || j >= 0) persist();
}

/** The unsent message, edit or delete an error with this id answers. */
export function findOutgoing(id, roomName) {
  const rooms = roomName && state.rooms.has(roomName) ? [state.rooms.get(roomName)] : state.rooms.values();
  for (const room of rooms) {
    const item = room.outbox.find((o) => o.id === id);
    if (item) return { room, item };
    const op = room.ops.find((o) => o.id === id);
    if (op) return { room, op };
  }
  return null;
}

/** The newest unacknowledged edit or delete of message `seq`, which the page shows ahead of the server. */
export function pendingOp(room, seq) {
  for (let i = room.ops.length - 1; i >= 0; i--) if (room.ops[i].target === seq) return room.ops[i];
  return null;
}

export function removeRoom(room) {
  state.rooms.delete(room.name);
  if (state.active === room.name) state.active = null;
  persist();
}

// ---------------------------------------------------------------- persistence

export function persist() {
  if (!state.user) return;
  const outbox = {};
  for (const room of state.rooms.values()) {
    if (room.outbox.length) {
      outbox[room.name] = room.outbox.map((o) => ({ id: o.id, text: o.text, time: o.time.toISOString(), failed: o.status === "failed" ? o.code : undefined }));
    }
  }
  const ops = {};
  for (const room of state.rooms.values()) {
    if (room.ops.length) ops[room.name] = room.ops.map(({ kind, id, target, text }) => ({ kind, id, target, text }));
  }
  const read = {};
  for (const room of state.rooms.values()) read[room.name] = room.readSeq;
  store.saveUserData(state.user, { rooms: [...state.rooms.keys()], active: state.active, read, outbox, ops });
}

/** Signs `name` in (`remember`: as the name on this device): the rooms, room in view, read marks and unsent messages saved on this device. */
export function load(name, { remember = true } = {}) {
  state.user = name;
  // A user from a token is not remembered: without the token, the next visit must not sign in as them.
  if (remember) store.saveUserName(name);
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
    for (const o of Array.isArray(data.ops[roomName]) ? data.ops[roomName] : []) {
      if ((o?.kind !== "edit" && o?.kind !== "delete") || typeof o.id !== "string" || !Number.isInteger(o.target)) continue;
      if (o.kind === "edit" && typeof o.text !== "string") continue;
      room.ops.push({ kind: o.kind, id: o.id, target: o.target, text: o.text, tries: 0 });
    }
    state.rooms.set(roomName, room);
  }
  state.active = data.active && state.rooms.has(data.active) ? data.active : (state.rooms.keys().next().value ?? null);
}

export function unload() {
  store.saveUserName(null);
  state.user = null;
  state.token = null;
  state.session = null;
  state.rooms = new Map();
  state.active = null;
}
