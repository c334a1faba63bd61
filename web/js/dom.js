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
