// What survives a reload, per user: joined rooms (in sidebar order), the room in view, the last seq
// read per room (for unread counts) and unsent messages, edits and deletions (resent with the same
// id, so never applied twice).

const USER_KEY = "orleanschat.user";
const dataKey = (user) => `orleanschat.v1.${user}`;

function read(key) {
  try { return JSON.parse(localStorage.getItem(key) ?? "null"); } catch { return null; }
}

function write(key, value) {
  try { localStorage.setItem(key, JSON.stringify(value)); } catch { /* private mode or full: stay in memory */ }
}

export function loadUserName() {
  const name = read(USER_KEY);
  return typeof name === "string" ? name : null;
}

export function saveUserName(name) {
  if (name === null) localStorage.removeItem(USER_KEY);
  else write(USER_KEY, name);
}

/** @returns {{rooms: string[], active: string|null, read: Record<string, number>, outbox: Record<string, {id: string, text: string, time: string, failed?: string}[]>, ops: Record<string, {kind: string, id: string, target: number, text?: string}[]>}} */
export function loadUserData(user) {
  const data = read(dataKey(user)) ?? {};
  return {
    rooms: Array.isArray(data.rooms) ? data.rooms.filter((r) => typeof r === "string") : [],
    active: typeof data.active === "string" ? data.active : null,
    read: data.read && typeof data.read === "object" ? data.read : {},
    outbox: data.outbox && typeof data.outbox === "object" ? data.outbox : {},
    ops: data.ops && typeof data.ops === "object" ? data.ops : {},
  };
}

export function saveUserData(user, data) {
  write(dataKey(user), data);
}
