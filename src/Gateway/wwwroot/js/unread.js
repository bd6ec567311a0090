// Unread counts and read marks. The server stores one read seq per user and room (`joined.read`, and
// `read` events when another tab or device of the same user reads); this page raises it when the user
// has really seen the room's latest events, and tells the server, at most once per room per second.

const SEND_EVERY_MS = 1000;

/**
 * The messages of others above the read mark that this page knows of (edits, deletions and deleted
 * messages do not count). The page loads only the latest page of a room, so when the read mark lies
 * below the oldest event loaded there may be more: `more` says so and the badge shows "N+", rather
 * than loading the whole room to count it.
 * @returns {{count: number, more: boolean}}
 */
export function unreadCount(room, me) {
  let count = 0;
  for (const m of room.msgs.values()) if (m.seq > room.readSeq && m.user !== me && !m.deleted) count++;
  const more = count > 0 && !room.oldestDone && room.minSeen > room.readSeq + 1;
  return { count, more };
}

/** The badge: "" for none, "3", "50+" when only part is loaded, "99+" at most. */
export function badgeText({ count, more }) {
  if (count === 0) return "";
  return count > 99 ? "99+" : `${count}${more ? "+" : ""}`;
}

/** The server's stored read seq of a room, from `joined`: what it holds now, exactly. */
export function storedRead(room, seq) {
  room.readSent = seq;
  if (seq > room.readSeq) room.readSeq = seq;
}

/** A `read` event: the same user read further on another connection. */
export function readElsewhere(room, seq) {
  if (seq > room.readSent) room.readSent = seq;
  if (seq > room.readSeq) room.readSeq = seq;
}

/** The user has seen everything loaded (room open, page visible, scrolled to the bottom). True if it moved. */
export function markRead(room) {
  if (room.lastSeq <= room.readSeq) return false;
  room.readSeq = room.lastSeq;
  return true;
}

/**
 * What to tell the server now: `{seq}` to send, `{waitMs}` when the last `read` of this room went out
 * less than a second ago, or null when the server already holds the mark.
 */
export function readDue(room, now) {
  if (room.readSeq <= room.readSent) return null;
  const waitMs = room.readSentAt + SEND_EVERY_MS - now;
  return waitMs > 0 ? { waitMs } : { seq: room.readSeq };
}

export function readSent(room, seq, now) {
  room.readSent = seq;
  room.readSentAt = now;
}
