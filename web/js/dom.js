// DOM helpers: element builder, avatars with stable colors, small formatters.
// Every piece of user data goes through textContent, never innerHTML.

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key === 'dataset') Object.assign(el.dataset, value);
      else if (key === 'style' && typeof value === 'object') Object.assign(el.style, value);
      else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
      else if (key === 'value' || key === 'checked' || key === 'disabled') el[key] = value;
      else el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// FNV-1a over the id string: cheap, stable across sessions and devices, so a
// person keeps the same avatar color everywhere.
function hash(str) {
  let x = 0x811c9dc5;
  for (let i = 0; i < str.length; i++) {
    x ^= str.charCodeAt(i);
    x = Math.imul(x, 0x01000193) >>> 0;
  }
  return x;
}

const AVATAR_COLORS = [
  '#e17076', '#faa774', '#a695e7', '#7bc862', '#6ec9cb',
  '#65aadd', '#ee7aae', '#f5a623', '#4cb5ab', '#8e85ee',
];

// The stable color of a person, for avatars and sender names.
export function colorFor(id) {
  return AVATAR_COLORS[hash(String(id ?? '')) % AVATAR_COLORS.length];
}

export function initials(name) {
  const words = String(name || '').trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) return '?';
  const first = Array.from(words[0]);
  if (words.length === 1) return (first[0] + (first[1] || '')).toUpperCase();
  return (first[0] + Array.from(words[words.length - 1])[0]).toUpperCase();
}

export function avatar(user, size = 'md') {
  const color = AVATAR_COLORS[hash(String(user?.id ?? '')) % AVATAR_COLORS.length];
  return h('span', { class: `avatar avatar-${size}`, style: { background: color }, 'aria-hidden': 'true' },
    initials(user?.display_name || user?.username));
}

// "just now", "5 min ago", "3 h ago", then a date. when is an ISO 8601 string
// (what the API sends) or a Unix time in seconds or milliseconds.
export function relativeTime(when) {
  if (!when) return '';
  const ms = typeof when === 'number' ? (when < 1e12 ? when * 1000 : when) : Date.parse(when);
  if (Number.isNaN(ms)) return '';
  const diff = Math.max(0, Date.now() - ms) / 1000;
  if (diff < 60) return 'just now';
  if (diff < 3600) return `${Math.floor(diff / 60)} min ago`;
  if (diff < 86400) return `${Math.floor(diff / 3600)} h ago`;
  const d = new Date(ms);
  const sameYear = d.getFullYear() === new Date().getFullYear();
  return d.toLocaleDateString(undefined, sameYear ? { month: 'short', day: 'numeric' } : { year: 'numeric', month: 'short', day: 'numeric' });
}

// A group's picture: up to four members' colors and initials in a grid, as
// people recognise a group by who is in it.
export function groupAvatar(users, size = 'md') {
  // A group left with one member looks like that member.
  if (users.length === 1) return avatar(users[0], size);
  const shown = users.slice(0, 4);
  return h('span', { class: `avatar avatar-${size} avatar-group avatar-group-${Math.max(1, shown.length)}`, 'aria-hidden': 'true' },
    shown.map((u) => h('span', { class: 'avatar-cell', style: { background: AVATAR_COLORS[hash(String(u?.id ?? '')) % AVATAR_COLORS.length] } },
      Array.from(initials(u?.display_name || u?.username))[0])));
}

function startOfDay(ms) {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

// Whole calendar days between two instants, in local time.
function daysBetween(earlier, later) {
  return Math.round((startOfDay(later) - startOfDay(earlier)) / 86400000);
}

export function clockTime(ms) {
  return new Date(ms).toLocaleTimeString(undefined, { hour: 'numeric', minute: '2-digit' });
}

// For the chat list: today 14:05, then Yesterday, a weekday within the
// week, then a date.
export function listTime(when) {
  const ms = typeof when === 'number' ? when : Date.parse(when);
  if (!when || Number.isNaN(ms)) return '';
  const days = daysBetween(ms, Date.now());
  if (days <= 0) return clockTime(ms);
  if (days === 1) return 'Yesterday';
  const d = new Date(ms);
  if (days < 7) return d.toLocaleDateString(undefined, { weekday: 'long' });
  const sameYear = d.getFullYear() === new Date().getFullYear();
  return d.toLocaleDateString(undefined, sameYear ? { month: 'short', day: 'numeric' } : { year: 'numeric', month: 'short', day: 'numeric' });
}

// For date separators in a chat: Today, Yesterday, Monday, then full dates.
export function dayLabel(ms) {
  const days = daysBetween(ms, Date.now());
  if (days <= 0) return 'Today';
  if (days === 1) return 'Yesterday';
  const d = new Date(ms);
  if (days < 7) return d.toLocaleDateString(undefined, { weekday: 'long' });
  const sameYear = d.getFullYear() === new Date().getFullYear();
  return d.toLocaleDateString(undefined, sameYear
    ? { weekday: 'long', month: 'long', day: 'numeric' }
    : { year: 'numeric', month: 'long', day: 'numeric' });
}

export function dayKey(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

// Makes parent's children exactly els, in order, touching only what
// changed: appending one message inserts one node, so focus, selection and
// live-region announcements of the others are left alone.
export function reconcile(parent, els) {
  const keep = new Set(els);
  for (const child of [...parent.children]) if (!keep.has(child)) child.remove();
  for (let i = 0; i < els.length; i++) {
    const at = parent.children[i];
    if (at !== els[i]) parent.insertBefore(els[i], at || null);
  }
}

let uid = 0;
export function nextId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

// Returns a function that answers true only when its argument differs from
// the previous call's. Screens repaint only when what they show changed, so
// a background poll never steals focus or swallows a tap.
export function changeGate() {
  let last;
  return (inputs) => {
    const key = JSON.stringify(inputs);
    if (key === last) return false;
    last = key;
    return true;
  };
}
