// jwt mode (protocol.md, "Connecting"): how an embedding application hands this page a token, and how the
// page asks it for a new one.
//
// Handing a token over, either way:
//   - in the URL fragment: https://chat.example.com/#token=<JWT> (also later: setting the fragment again).
//     The page removes it from the address bar at once (history.replaceState) and never stores it.
//   - window.orleansChatToken = "<JWT>", set by a script that runs before js/app.js.
// With a token the page asks for no name: the user is the token's `sub` (read here for display only; the
// gateway validates the token) and it connects with /ws?access_token=<JWT>.
//
// When the token expires (its `exp` passes) or the gateway refuses it (HTTP 401 on a reconnect), the page
// says "Your session has expired" and dispatches on window
//     new CustomEvent("orleanschat:token-expired", { detail: { user } })
// The application answers with
//     window.orleansChat.setToken(newToken)
// and the page reconnects with it and rejoins its rooms with `since`: nothing sent meanwhile is lost.
//
// Without a token the page is in open mode and asks for a name. If the gateway is in jwt mode after all,
// the handshake fails with 401; the page then shows "This chat needs a sign-in from your application" and
// dispatches the same event (its `detail.user` is the name typed, which the gateway did not accept).

export const TOKEN_EXPIRED = "orleanschat:token-expired";

/** The token handed over in the fragment (removed from the address bar) or in window.orleansChatToken. */
export function takeToken() {
  const fromHash = tokenInHash();
  if (fromHash) return fromHash;
  const given = window.orleansChatToken;
  return typeof given === "string" && given ? given : null;
}

/** `#token=…` in the address bar, removed at once so it is neither bookmarked nor shared nor kept in history. */
export function tokenInHash() {
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (token === null) return null;
  history.replaceState(history.state, "", location.pathname + location.search);
  return token || null;
}

/** The token's `sub` and `exp` (seconds), or null when it is not a JWT with a `sub`. Display only. */
export function readClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part.padEnd(part.length + (4 - part.length % 4) % 4, "=")), (c) => c.charCodeAt(0));
    const payload = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof payload?.sub !== "string" || !payload.sub) return null;
    return { sub: payload.sub, exp: Number.isFinite(payload.exp) ? payload.exp : null };
  } catch {
    return null;
  }
}

/** Asks the embedding application for a (new) token. */
export function requestToken(user) {
  window.dispatchEvent(new CustomEvent(TOKEN_EXPIRED, { detail: { user } }));
}

/**
 * After a handshake that failed before `open`: does the gateway refuse these credentials? The history
 * endpoint answers 401 in jwt mode without a valid token, like the handshake did.
 */
export async function refusedByGateway(token) {
  try {
    const response = await fetch("/api/rooms/lobby/messages?limit=1", {
      headers: token ? { Authorization: `Bearer ${token}` } : {},
      cache: "no-store",
    });
    return response.status === 401;
  } catch {
    return false; // the gateway is not reachable at all: an ordinary retry
  }
}

let expiryTimer = 0;

/** Calls `onExpired` once the token's `exp` has passed (no call for a token without `exp`). */
export function watchExpiry(exp, onExpired) {
  clearTimeout(expiryTimer);
  if (exp === null) return;
  const wait = exp * 1000 - Date.now();
  if (wait <= 0) {
    onExpired();
    return;
  }
  // setTimeout holds at most ~24.8 days: a longer token is looked at again then.
  expiryTimer = setTimeout(() => watchExpiry(exp, onExpired), Math.min(wait, 2 ** 31 - 1));
}

export function stopWatchingExpiry() {
  clearTimeout(expiryTimer);
}
