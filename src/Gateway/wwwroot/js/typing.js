// "alice is typing…": who is typing in a room, and when this page tells the room that its user is.
// Typing is best effort (protocol.md, "Typing"): not stored, may be dropped, so everything here
// expires by itself.
import { state } from "./state.js";

const SHOW_MS = 6000;       // an indicator lasts this long after the last `typing` of that user
const ANNOUNCE_MS = 2500;   // this page sends `typing` at most this often per room (the protocol asks 2–3 s)

/** A `typing` event: `user` is typing in `room` (never this page's own user). */
export function startedTyping(room, user, now) {
  if (user === state.user) return;
  room.typing.set(user, now + SHOW_MS);
}

/** Their message arrived, or the connection dropped: the indicator goes at once. */
export function stoppedTyping(room, user) {
  room.typing.delete(user);
}

/** Who is typing in `room` now, in alphabetical order; forgets those whose time ran out. */
export function typingNames(room, now) {
  for (const [user, until] of room.typing) if (until <= now) room.typing.delete(user);
  return [...room.typing.keys()].filter((user) => user !== state.user).sort((a, b) => a.localeCompare(b));
}

/** When the next indicator of `room` runs out (ms), or null when nobody is typing. */
export function nextExpiry(room) {
  let next = null;
  for (const until of room.typing.values()) if (next === null || until < next) next = until;
  return next;
}

export function typingLabel(names) {
  switch (names.length) {
    case 0: return "";
    case 1: return `${names[0]} is typing…`;
    case 2: return `${names[0]} and ${names[1]} are typing…`;
    case 3: return `${names[0]}, ${names[1]} and ${names[2]} are typing…`;
    default: return "several people are typing…";
  }
}

/** True when this page should send `typing` for `room` now (at most once per ANNOUNCE_MS); records it. */
export function shouldAnnounce(room, now) {
  if (now - room.typingSentAt < ANNOUNCE_MS) return false;
  room.typingSentAt = now;
  return true;
}

/** The user sent their message: the next keystroke announces again at once. */
export function announceAgain(room) {
  room.typingSentAt = 0;
}
