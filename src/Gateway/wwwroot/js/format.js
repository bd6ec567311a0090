// Pure helpers: names, text to DOM (never HTML), times, and error codes in plain words.

const NAME_CHARS = /^[A-Za-z0-9_.-]+$/;

export function isValidUser(name) {
  return typeof name === "string" && name.length >= 1 && name.length <= 32 && NAME_CHARS.test(name);
}

export function isValidRoom(name) {
  return typeof name === "string" && name.length >= 1 && name.length <= 64 && NAME_CHARS.test(name);
}

export function utf8Length(text) {
  return new TextEncoder().encode(text).length;
}

/** A client message id: 1–64 characters, unique per message. */
export function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // randomUUID needs a secure context; getRandomValues works everywhere.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// http(s) links and bare www. links; trailing punctuation is left out of the link.
const LINK = /\b(?:https?:\/\/|www\.)[^\s<>"]+/gi;
const TRAILING = /[.,;:!?'")\]}]+$/;

/**
 * Appends `text` to `parent` as text nodes, with http(s) links as anchors. Nothing in the text is
 * ever parsed as HTML: every piece goes through textContent / createTextNode.
 */
export function appendLinkified(parent, text) {
  let last = 0;
  for (const match of text.matchAll(LINK)) {
    let url = match[0];
    const trailing = url.match(TRAILING);
    // Keep a closing parenthesis that belongs to the URL, as in wiki links.
    if (trailing && !(trailing[0] === ")" && url.includes("("))) url = url.slice(0, -trailing[0].length);
    if (!url) continue;
    const start = match.index;
    if (start > last) parent.append(document.createTextNode(text.slice(last, start)));
    const href = /^https?:\/\//i.test(url) ? url : `https://${url}`;
    let safe;
    try { safe = new URL(href); } catch { safe = null; }
    if (safe && (safe.protocol === "http:" || safe.protocol === "https:")) {
      const a = document.createElement("a");
      a.href = safe.href;
      a.textContent = url;
      a.target = "_blank";
      a.rel = "noopener noreferrer nofollow";
      parent.append(a);
    } else {
      parent.append(document.createTextNode(url));
    }
    last = start + url.length;
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "long", day: "numeric" });
const dayYearFormat = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "long", day: "numeric" });

export function formatTime(date) {
  return timeFormat.format(date);
}

export function formatFull(date) {
  return fullFormat.format(date);
}

export function dayKey(date) {
  return `${date.getFullYear()}-${date.getMonth()}-${date.getDate()}`;
}

export function formatDay(date) {
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (dayKey(date) === dayKey(today)) return "Today";
  if (dayKey(date) === dayKey(yesterday)) return "Yesterday";
  return date.getFullYear() === today.getFullYear() ? dayFormat.format(date) : dayYearFormat.format(date);
}

/** A send error in words a user understands. */
export function describeSendError(code, maxTextBytes) {
  switch (code) {
    case "rate_limited": return "Not sent: you are sending messages too quickly. Wait a moment and retry.";
    case "too_large": return `Not sent: this message is too long (the limit is about ${maxTextBytes.toLocaleString()} characters). Shorten it and send again.`;
    case "unavailable": return "Not sent: the chat service is briefly unavailable.";
    case "not_joined": return "Not sent: you are not in this room any more.";
    case "bad_room": return "Not sent: this room name is not allowed.";
    case "bad_request": return "Not sent: the server did not accept this message.";
    default: return "Not sent.";
  }
}

/** Why an edit or a deletion of one's own message did not happen, for a notice. */
export function describeOpError(kind, code, maxTextBytes) {
  const what = kind === "edit" ? "Not edited" : "Not deleted";
  switch (code) {
    case "forbidden": return `${what}: you can only change your own messages.`;
    case "not_found": return `${what}: that message is no longer there (it may have been deleted).`;
    case "too_large": return `${what}: the new text is too long (the limit is about ${maxTextBytes.toLocaleString()} characters).`;
    case "rate_limited": return `${what}: you are going too fast. Wait a moment and try again.`;
    case "unavailable": return `${what}: the chat service is briefly unavailable. Try again in a moment.`;
    default: return `${what}: the server did not accept it.`;
  }
}

/** Any other server error, for a toast. */
export function describeError(event) {
  switch (event.code) {
    case "bad_room": return "Room names use 1–64 letters, digits, “-”, “_” or “.”.";
    case "not_joined": return `You are not in #${event.room ?? "that room"}.`;
    case "rate_limited": return "You are going too fast. Wait a moment.";
    case "unavailable": return "The chat service is briefly unavailable. Trying again…";
    case "too_large": return "That was too large for the server.";
    case "forbidden": return event.room ? `You are not allowed in #${event.room}.` : "You are not allowed to do that.";
    case "not_found": return "That message is no longer there.";
    default: return event.message ? `The server said: ${event.message}` : "Something went wrong.";
  }
}

/** A stable, readable color for a user's avatar. */
export function userHue(name) {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return h % 360;
}

export function initials(name) {
  const parts = name.split(/[._-]+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[1][0] : name[0];
  return letters.toUpperCase();
}
