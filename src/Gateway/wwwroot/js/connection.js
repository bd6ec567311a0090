// The WebSocket to the gateway: connect, split frames into events, reconnect with backoff.
// It knows nothing about rooms; app.js rejoins them on every `welcome`.
// Two closes end the session instead of a retry: the server API disconnecting the user (1008 with the reason
// below), and a handshake the gateway refuses (HTTP 401 in jwt mode: see auth.js for what the page does then).

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;
// A connection must stay up this long before the backoff starts again from the base delay, so a
// gateway that accepts and then closes at once (cluster unavailable) is not hammered.
const STABLE_AFTER_MS = 5000;
/** The reason of the 1008 close the server API sends (protocol.md, "Server API"): do not come back by itself. */
export const SERVER_DISCONNECT = "disconnected by the server";

/** What a close code means to a person reading the status bar. */
export function describeClose(code) {
  switch (code) {
    case 1000: return "The connection was closed.";
    case 1001: return "The server is restarting.";
    case 1007: return "The server could not read something this page sent.";
    case 1008: return "You were disconnected for sending too many messages too quickly.";
    case 1009: return "You were disconnected because a message was too large.";
    case 1011: return "The server ran into a problem.";
    case 1013: return "The server is busy right now.";
    default: return "The connection was lost.";
  }
}

export class Connection {
  /**
   * @param {object} options
   * @param {(user: string) => string} options.url  builds the /ws URL for a user
   * @param {(event: object) => void} options.onEvent  one server event
   * @param {(state: object) => void} options.onState  { state, delayMs?, code?, reason? }
   * @param {() => Promise<boolean>} [options.refused]  after a handshake that failed before `open`: true when
   *   the gateway refuses this page's credentials (a browser cannot read the HTTP status of a WebSocket)
   * @param {() => void} [options.onRefused]  called instead of retrying when `refused` said so
   */
  constructor({ url, onEvent, onState, refused, onRefused }) {
    this.url = url;
    this.onEvent = onEvent;
    this.onState = onState;
    this.refused = refused;
    this.onRefused = onRefused;
    this.socket = null;
    this.user = null;
    this.attempt = 0;
    this.timer = 0;
    this.openedAt = 0;
    this.stopped = true;
    this.lastClose = null;
    this.heartbeat = 15;
    this.session = 0;
    window.addEventListener("online", () => this.retryNow());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.retryNow();
    });
  }

  get isOpen() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  start(user) {
    this.stop();
    this.user = user;
    this.session++; // a probe still running for the previous start no longer counts
    this.stopped = false;
    this.attempt = 0;
    this.#open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
      try { socket.close(1000); } catch { /* already closed */ }
    }
    this.onState({ state: "idle" });
  }

  /** Skips the rest of a backoff wait (the user clicked "Retry now", the network came back). */
  retryNow() {
    if (this.stopped || this.socket) return;
    clearTimeout(this.timer);
    this.#open();
  }

  /** Sends one client frame; false when there is no open connection (the caller keeps it for later). */
  send(frame) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  #open() {
    this.onState({ state: this.attempt === 0 && !this.lastClose ? "connecting" : "reconnecting", close: this.lastClose });
    let socket;
    try {
      socket = new WebSocket(this.url(this.user));
    } catch {
      this.#scheduleReconnect(null);
      return;
    }
    this.socket = socket;
    socket.onopen = () => { this.openedAt = Date.now(); };
    socket.onmessage = (e) => {
      if (typeof e.data !== "string") return;
      // A frame may carry several events, one per line (JSON escapes newlines inside strings).
      for (const line of e.data.split("\n")) {
        if (!line) continue;
        let event;
        try { event = JSON.parse(line); } catch { continue; }
        if (event === null || typeof event !== "object") continue;
        if (event.type === "welcome") {
          if (typeof event.heartbeat === "number") this.heartbeat = event.heartbeat;
          this.lastClose = null;
          this.onState({ state: "online", gateway: event.gateway });
        }
        this.onEvent(event);
      }
    };
    socket.onclose = (e) => {
      if (this.socket !== socket) return;
      this.socket = null;
      const opened = this.openedAt !== 0;
      if (opened && Date.now() - this.openedAt >= STABLE_AFTER_MS) this.attempt = 0;
      this.openedAt = 0;
      if (e.code === 1008 && e.reason === SERVER_DISCONNECT) {
        // The application's backend ended this session on purpose: coming back by itself would undo that.
        this.stop();
        this.onState({ state: "closed", close: { code: e.code, reason: e.reason } });
        return;
      }
      this.#scheduleReconnect({ code: e.code, reason: e.reason });
      if (!opened && this.refused) this.#checkRefused();
    };
    socket.onerror = () => { /* onclose follows and handles it */ };
  }

  /** The retry is already scheduled; if the gateway refuses the credentials, it is called off. */
  async #checkRefused() {
    const session = this.session;
    if (!(await this.refused()) || this.stopped || this.session !== session) return;
    this.stop();
    this.onRefused?.();
  }

  #scheduleReconnect(close) {
    if (this.stopped) return;
    this.lastClose = close;
    // Exponential backoff with jitter: somewhere between half and all of base * 2^attempt, capped,
    // so that a gateway restart does not bring every tab back in the same instant.
    const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempt);
    let delay = ceiling / 2 + Math.random() * ceiling / 2;
    // Abuse closes get a longer pause; reconnecting at once would only repeat it.
    if (close && close.code === 1008) delay = Math.max(delay, 10000);
    this.attempt = Math.min(this.attempt + 1, 16);
    this.onState({ state: "waiting", delayMs: delay, retryAt: Date.now() + delay, close });
    this.timer = setTimeout(() => this.#open(), delay);
  }
}
