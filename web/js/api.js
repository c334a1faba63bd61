// The HTTP client for /v1: bearer token, JSON bodies, one error type carrying the server's message.

const TOKEN_KEY = 'plaza.token';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

let unauthorizedHandler = () => {};

// Called once by the app: a 401 on a request that carried a token means the
// session was revoked or expired, and the app must return to log in.
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

export function getToken() {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // Private modes may refuse storage; the session then lasts for this tab only.
  }
}

export async function api(method, path, body, { auth = true, signal } = {}) {
  const headers = { Accept: 'application/json' };
  const token = auth ? getToken() : null;
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method, headers, cache: 'no-store', signal };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }

  let res;
  try {
    res = await fetch(path, init);
  } catch {
    // An abort (a timeout of ours) is a network failure too: the request may
    // or may not have reached the server, so callers retry idempotently.
    throw new ApiError(0, 'network', navigator.onLine === false
      ? 'You are offline. Check your connection and try again.'
      : 'Can’t reach Plaza right now. Try again in a moment.');
  }

  let data = null;
  if (res.status !== 204) {
    const text = await res.text().catch(() => '');
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
  }

  if (res.ok) return data;

  const err = data && data.error;
  const apiError = new ApiError(
    res.status,
    (err && err.code) || 'http_error',
    err && typeof err.message === 'string' && err.message ? sentence(err.message) : defaultMessage(res.status),
  );
  const retryAfter = Number(res.headers.get('Retry-After'));
  if (Number.isFinite(retryAfter) && retryAfter > 0) apiError.retryAfter = retryAfter;
  if (res.status === 401 && token) unauthorizedHandler(apiError);
  throw apiError;
}

// The server writes messages in lower case, as log lines; on screen they
// start with a capital like every other sentence.
function sentence(msg) {
  return msg.charAt(0).toUpperCase() + msg.slice(1);
}

function defaultMessage(status) {
  if (status === 429) return 'Too many attempts. Wait a few minutes and try again.';
  if (status >= 500) return 'Plaza had a problem handling this. Try again in a moment.';
  return `The request failed (HTTP ${status}).`;
}

const enc = encodeURIComponent;

// Raw bytes up (uploads) and down (attachments): the same bearer token as
// api(), never in the URL, since URLs end up in logs.
export async function apiBytes(method, path, { body, contentType, signal } = {}) {
  const headers = {};
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (contentType) headers['Content-Type'] = contentType;
  let res;
  try {
    res = await fetch(path, { method, headers, body, signal, cache: 'default' });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', navigator.onLine === false
      ? 'You are offline. Check your connection and try again.'
      : 'Can’t reach Plaza right now. Try again in a moment.');
  }
  if (res.ok) return res;
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  const err = data && data.error;
  const apiError = new ApiError(res.status, (err && err.code) || 'http_error',
    err && typeof err.message === 'string' && err.message ? sentence(err.message) : defaultMessage(res.status));
  if (res.status === 401 && token) unauthorizedHandler(apiError);
  throw apiError;
}

export const Plaza = {
  register: (username, password, displayName) =>
    api('POST', '/v1/accounts', { username, password, display_name: displayName }, { auth: false }),
  login: (username, password) => api('POST', '/v1/sessions', { username, password }, { auth: false }),
  logout: () => api('DELETE', '/v1/sessions/current'),
  sessions: () => api('GET', '/v1/sessions'),
  revokeSession: (id) => api('DELETE', `/v1/sessions/${enc(id)}`),
  me: () => api('GET', '/v1/me'),
  updateMe: (fields) => api('PATCH', '/v1/me', fields),
  searchUsers: (prefix) => api('GET', `/v1/users?q=${enc(prefix)}`),
  user: (id) => api('GET', `/v1/users/${enc(id)}`),
  sendRequest: (userId, greeting) => api('POST', '/v1/contacts/requests', { user_id: userId, greeting }),
  requests: () => api('GET', '/v1/contacts/requests'),
  accept: (id) => api('POST', `/v1/contacts/requests/${enc(id)}/accept`),
  decline: (id) => api('POST', `/v1/contacts/requests/${enc(id)}/decline`),
  contacts: () => api('GET', '/v1/contacts'),
  removeContact: (userId) => api('DELETE', `/v1/contacts/${enc(userId)}`),
  block: (userId) => api('POST', '/v1/blocks', { user_id: userId }),
  unblock: (userId) => api('DELETE', `/v1/blocks/${enc(userId)}`),
  blocks: () => api('GET', '/v1/blocks'),

  conversations: (before) => api('GET', `/v1/conversations${before ? `?before=${enc(before)}` : ''}`),
  conversation: (id) => api('GET', `/v1/conversations/${enc(id)}`),
  openDirect: (userId) => api('POST', '/v1/conversations', { type: 'direct', user_id: userId }),
  createGroup: (title, memberIds) => api('POST', '/v1/conversations', { type: 'group', title, member_ids: memberIds }),
  messages: (convId, before, limit = 50) =>
    api('GET', `/v1/conversations/${enc(convId)}/messages?limit=${limit}${before ? `&before=${enc(before)}` : ''}`),
  sendMessage: (convId, body, signal) => api('POST', `/v1/conversations/${enc(convId)}/messages`, body, { signal }),
  markRead: (convId, messageId) => api('POST', `/v1/conversations/${enc(convId)}/read`, { message_id: messageId }),
  markDelivered: (convId, messageId) => api('POST', `/v1/conversations/${enc(convId)}/delivered`, { message_id: messageId }),
  editMessage: (convId, msgId, text) => api('PATCH', `/v1/conversations/${enc(convId)}/messages/${enc(msgId)}`, { text }),
  recallMessage: (convId, msgId) => api('POST', `/v1/conversations/${enc(convId)}/messages/${enc(msgId)}/recall`),
  deleteMessage: (convId, msgId) => api('DELETE', `/v1/conversations/${enc(convId)}/messages/${enc(msgId)}`),
  react: (convId, msgId, emoji, on) =>
    api(on ? 'PUT' : 'DELETE', `/v1/conversations/${enc(convId)}/messages/${enc(msgId)}/reactions/${enc(emoji)}`),
  renameGroup: (convId, title) => api('PATCH', `/v1/conversations/${enc(convId)}`, { title }),
  addMembers: (convId, userIds) => api('POST', `/v1/conversations/${enc(convId)}/members`, { user_ids: userIds }),
  removeMember: (convId, userId) => api('DELETE', `/v1/conversations/${enc(convId)}/members/${enc(userId)}`),
  setRole: (convId, userId, role) => api('PUT', `/v1/conversations/${enc(convId)}/members/${enc(userId)}/role`, { role }),
  createInvite: (convId) => api('POST', `/v1/conversations/${enc(convId)}/invites`),
  invite: (code) => api('GET', `/v1/invites/${enc(code)}`),
  joinInvite: (code) => api('POST', `/v1/invites/${enc(code)}/join`),
  presence: (userIds) => api('GET', `/v1/presence?user_ids=${userIds.map(enc).join(',')}`),
  upload: (blob, name) => apiBytes('POST', `/v1/uploads${name ? `?name=${enc(name)}` : ''}`, {
    body: blob, contentType: blob.type || 'application/octet-stream',
  }).then((res) => res.json()),

  wallet: () => api('GET', '/v1/wallet'),
  setPin: (pin, password) => api('PUT', '/v1/wallet/pin', { pin, password }),
  walletSettings: () => api('GET', '/v1/wallet/settings'),
  updateWalletSettings: (fields) => api('PATCH', '/v1/wallet/settings', fields),
  topup: (amount, currency, key) => api('POST', '/v1/wallet/topups', { amount, currency, idempotency_key: key }),
  withdraw: (amount, currency, pin, key) =>
    api('POST', '/v1/wallet/withdrawals', { amount, currency, pin, idempotency_key: key }),
  sendTransfer: (fields) => api('POST', '/v1/wallet/transfers', fields),
  transfer: (id) => api('GET', `/v1/wallet/transfers/${enc(id)}`),
  acceptTransfer: (id) => api('POST', `/v1/wallet/transfers/${enc(id)}/accept`),
  returnTransfer: (id) => api('POST', `/v1/wallet/transfers/${enc(id)}/return`),
  sendRedPacket: (convId, fields) => api('POST', `/v1/conversations/${enc(convId)}/red-packets`, fields),
  redPacket: (id) => api('GET', `/v1/red-packets/${enc(id)}`),
  claimRedPacket: (id, key) => api('POST', `/v1/red-packets/${enc(id)}/claim`, { idempotency_key: key }),
  limits: () => api('GET', '/v1/wallet/limits'),
  statement: (month) => api('GET', `/v1/wallet/statements/${enc(month)}`),
  payPreview: (code) => api('GET', `/v1/pay/${enc(code)}`),
  pay: (fields) => api('POST', '/v1/pay', fields),
  merchant: () => api('GET', '/v1/merchants/me'),
  openMerchant: (fields) => api('POST', '/v1/merchants', fields),
  updateMerchant: (fields) => api('PATCH', '/v1/merchants/me', fields),
  rotateMerchantKey: () => api('POST', '/v1/merchants/me/keys'),
  transactions: (before, filters = {}) => {
    const q = new URLSearchParams({ limit: '30' });
    if (before) q.set('before', before);
    for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
    return api('GET', `/v1/wallet/transactions?${q}`);
  },
};

// A file the server makes for me (CSV exports): fetched with the token,
// which a plain link cannot carry, then handed to the browser as a download
// through a blob URL. The name is the server's Content-Disposition filename.
export async function downloadFile(path, fallbackName) {
  const res = await apiBytes('GET', path);
  const blob = await res.blob();
  const cd = res.headers.get('Content-Disposition') || '';
  const m = /filename="([^"]+)"/.exec(cd);
  const name = m ? m[1] : fallbackName;
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.appendChild(a);
  a.click();
  a.remove();
  // Some browsers read the blob after click() returns: free it a little later.
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return name;
}
