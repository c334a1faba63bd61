// The live event link (/v1/ws): hello with the token and the last seen seq, wait for ready, reconnect with capped, jittered backoff.

const MIN_DELAY_MS = 1000;
const MAX_DELAY_MS = 30000;
// How long a socket may stay open without "ready" before it is treated as failed.
const READY_TIMEOUT_MS = 15000;

// getSince() gives the seq to resume after, asked at every hello: the
// caller applies the events and keeps that number (across reloads too).
// onReady(info) runs once per ready socket, before the catch-up events.
export function createEventLink({ getToken, getSince = () => 0, onEvent, onStatus, onReady = () => {}, onUnauthorized }) {
  let ws = null;
  let isReady = false;
  let attempt = 0;
  let retryTimer = 0;
  let readyTimer = 0;
  let stopped = true;

  function status(s) {
    onStatus(s);
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = 0;
    if (stopped || ws) return;
    const token = getToken();
    if (!token) return;
    // The browser knows it has no network: wait for its 'online' (nudge).
    if (navigator.onLine === false) {
      status('offline');
      scheduleRetry();
      return;
    }
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    let sock;
    try {
      sock = new WebSocket(`${scheme}://${location.host}/v1/ws`);
    } catch {
      scheduleRetry();
      return;
    }
    ws = sock;
    status('connecting');

    sock.onopen = () => {
      sock.send(JSON.stringify({ type: 'hello', token, since: getSince() }));
      readyTimer = setTimeout(() => sock.close(4000, 'no ready'), READY_TIMEOUT_MS);
    };
    sock.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (!msg || typeof msg !== 'object') return;
      if (msg.type === 'ready') {
        clearTimeout(readyTimer);
        attempt = 0;
        isReady = true;
        status('online');
        onReady(msg);
        return;
      }
      onEvent(msg);
    };
    sock.onclose = (ev) => {
      clearTimeout(readyTimer);
      if (ws === sock) { ws = null; isReady = false; }
      if (stopped) return;
      // 4001: the token was refused or the session was revoked; retrying
      // cannot help, the person has to log in again (docs/protocol.md).
      if (ev.code === 4001) {
        stopped = true;
        status('offline');
        onUnauthorized();
        return;
      }
      status('offline');
      scheduleRetry();
    };
    sock.onerror = () => {
      // onclose follows and does the retry.
    };
  }

  function scheduleRetry() {
    if (stopped || retryTimer) return;
    const cap = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** attempt);
    attempt = Math.min(attempt + 1, 10);
    // Full jitter spreads a crowd of clients reconnecting after a restart.
    const delay = cap / 2 + Math.random() * (cap / 2);
    retryTimer = setTimeout(connect, delay);
  }

  // Coming back online or to the foreground: try now instead of waiting out the backoff.
  function nudge() {
    if (stopped || ws) return;
    attempt = 0;
    connect();
  }

  // The browser says the network is gone: a socket may linger for minutes
  // before TCP notices, and frames sent into it are lost, so it is closed
  // now; the next 'online' nudges a fresh one, which resumes from since.
  function drop() {
    if (!ws) return;
    const sock = ws;
    ws = null;
    isReady = false;
    clearTimeout(readyTimer);
    sock.close(1000, 'offline');
    status('offline');
    scheduleRetry();
  }

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      attempt = 0;
      connect();
    },
    stop() {
      stopped = true;
      clearTimeout(retryTimer);
      clearTimeout(readyTimer);
      retryTimer = 0;
      if (ws) {
        const sock = ws;
        ws = null;
        isReady = false;
        sock.close(1000, 'bye');
      }
      status('offline');
    },
    nudge,
    drop,
    ready: () => isReady,
    // Sends a frame on a ready socket; false when there is none (the caller
    // keeps the work and retries at the next ready).
    send(frame) {
      if (!ws || !isReady || ws.readyState !== WebSocket.OPEN) return false;
      try {
        ws.send(JSON.stringify(frame));
        return true;
      } catch {
        return false;
      }
    },
  };
}
