// What the page knows: the signed-in user, the joined rooms, each room's stored events and what the
// user asked for that the server has not acknowledged yet. No DOM and no socket in here.
import * as fmt from "./format.js";
import * as store from "./store.js";

/** @typedef {{seq:number,user:string,text:string,time:Date,id:string}} Msg */
/** @typedef {{id:string,text:string,time:Date,status:"pending"|"failed",error?:string,code?:string,tries:number}} Outgoing */

export const state = {
  user: null,
  /** @type {Map<string, Room>} sidebar order */
  rooms: new Map(),
  active: null,
  connection: { state: "idle" },
  maxTextBytes: 4096,
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
    this.dirty = true;          // the timeline needs drawing again
    this.prepended = false;     // older messages came in above: keep the reader's place
    this.scrollFromBottom = 0;
    this.draft = "";
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

  /** Forgets every stored message: the server's seq went backwards (its store was reset). */
  reset(seq) {
    this.msgs = new Map();
    this.knownSeq = this.lastSeq = 0;
    this.loaded = this.oldestDone = false;
    this.notices = [];
    this.readSeq = Math.min(this.readSeq, seq);
    this.dirty = true;
  }
}

function toMsg(m) {
  return { seq: m.seq, user: String(m.user), text: String(m.text), time: new Date(m.time), id: m.id };
}

/** Adds stored messages (deduplicated by seq) and moves `lastSeq` over every contiguous one. */
export function addMessages(room, list) {
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

export function findOutgoing(id, roomName) {
  const rooms = roomName && state.rooms.has(roomName) ? [state.rooms.get(roomName)] : state.rooms.values();
  for (const room of rooms) {
    const item = room.outbox.find((o) => o.id === id);
    if (item) return { room, item };
  }
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
  const read = {};
  for (const room of state.rooms.values()) read[room.name] = room.readSeq;
  store.saveUserData(state.user, { rooms: [...state.rooms.keys()], active: state.active, read, outbox });
}

/** Signs `name` in: the rooms, room in view, read marks and unsent messages saved on this device. */
export function load(name) {
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
}

export function unload() {
  store.saveUserName(null);
  state.user = null;
  state.rooms = new Map();
  state.active = null;
}
