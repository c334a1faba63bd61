// Inline SVG icons (24px grid, stroked with currentColor) so the shell needs no icon font or network.
// Only these constant strings are parsed as markup; user data never is.

const PATHS = {
  chats: '<path class="fillable" d="M12 4C7.03 4 3 7.36 3 11.5c0 2.3 1.24 4.36 3.2 5.74L5.6 20.4l3.64-1.82c.87.2 1.8.32 2.76.32 4.97 0 9-3.36 9-7.5S16.97 4 12 4z"/><path class="dots" d="M8.2 11.5h.01M12 11.5h.01M15.8 11.5h.01"/>',
  contacts: '<circle class="fillable" cx="9" cy="8" r="3.6"/><path class="fillable" d="M2.6 20c0-3.5 2.9-5.9 6.4-5.9s6.4 2.4 6.4 5.9z"/><path d="M15.6 4.6a3.6 3.6 0 0 1 0 6.8M17.8 14.4c2.2.7 3.6 2.6 3.6 5.6"/>',
  discover: '<circle cx="12" cy="12" r="9"/><path class="fillable" d="M15.5 8.5l-2 5-5 2 2-5z"/>',
  me: '<circle class="fillable" cx="12" cy="8" r="4"/><path class="fillable" d="M4 20.5c0-4.1 3.6-6.6 8-6.6s8 2.5 8 6.6z"/>',
  chevron: '<path d="M9.5 5.5L16 12l-6.5 6.5"/>',
  back: '<path d="M14.5 5.5L8 12l6.5 6.5"/>',
  'user-plus': '<circle cx="10" cy="8" r="3.8"/><path d="M3 20c0-3.8 3.1-6.2 7-6.2 1.4 0 2.7.3 3.8.9M18 13.5v7M14.5 17h7"/>',
  search: '<circle cx="11" cy="11" r="6.5"/><path d="M16 16l4.5 4.5"/>',
  close: '<path d="M6 6l12 12M18 6L6 18"/>',
  moments: '<circle cx="12" cy="12" r="9"/><path d="M12 3v6.5M20.2 8.5l-6.1 2.2M17.6 19l-4.2-5M6.4 19l4.2-5M3.8 8.5l6.1 2.2"/>',
  scan: '<path d="M4 8.5V6a2 2 0 0 1 2-2h2.5M15.5 4H18a2 2 0 0 1 2 2v2.5M20 15.5V18a2 2 0 0 1-2 2h-2.5M8.5 20H6a2 2 0 0 1-2-2v-2.5M4 12h16"/>',
  apps: '<rect x="4" y="4" width="6.5" height="6.5" rx="1.8"/><rect x="13.5" y="4" width="6.5" height="6.5" rx="1.8"/><rect x="4" y="13.5" width="6.5" height="6.5" rx="1.8"/><circle cx="16.75" cy="16.75" r="3.3"/>',
  device: '<rect x="3" y="5" width="13" height="10" rx="1.6"/><path d="M1.5 18.5h16"/><rect x="17.5" y="8" width="5" height="10.5" rx="1.2"/>',
  phone: '<rect x="7" y="2.5" width="10" height="19" rx="2.2"/><path d="M11 18.5h2"/>',
  logout: '<path d="M14 4.5H6.5a2 2 0 0 0-2 2v11a2 2 0 0 0 2 2H14M10 12h10.5M17 8.5l3.5 3.5-3.5 3.5"/>',
  edit: '<path d="M4 20h4L19 9a2.8 2.8 0 0 0-4-4L4 16z"/><path d="M13.5 6.5l4 4"/>',
  block: '<circle cx="12" cy="12" r="8.5"/><path d="M6 6l12 12"/>',
  remove: '<circle cx="10" cy="8" r="3.8"/><path d="M3 20c0-3.8 3.1-6.2 7-6.2 1.4 0 2.7.3 3.8.9M15 17h6"/>',
  check: '<path d="M5 12.5l4.5 4.5L19 7.5"/>',
  offline: '<path d="M2.5 8.8A15 15 0 0 1 8 5.6M21.5 8.8A15 15 0 0 0 12 5c-.6 0-1.2 0-1.8.1M5.5 12.2a10 10 0 0 1 4-2.2M18.5 12.2a10 10 0 0 0-2.3-1.6M9 15.5a4.5 4.5 0 0 1 6 0M12 19h.01M3.5 3.5l17 17"/>',
  alert: '<circle cx="12" cy="12" r="9"/><path d="M12 7.5v5.5M12 16.5h.01"/>',
  shield: '<path d="M12 3l7.5 3v5.5c0 4.6-3.2 8.3-7.5 9.5-4.3-1.2-7.5-4.9-7.5-9.5V6z"/>',
  message: '<path d="M4 5.5h16v10.5H9l-5 4z"/>',
  bell: '<path d="M6 16.5V11a6 6 0 0 1 12 0v5.5l1.5 2h-15zM10 21h4"/>',
  wave: '<path d="M7 11.5V6.8a1.3 1.3 0 0 1 2.6 0v4M9.6 10.5V5.3a1.3 1.3 0 0 1 2.6 0v5.2M12.2 10.5V6.3a1.3 1.3 0 0 1 2.6 0v5.7M14.8 11.5v-1.7a1.3 1.3 0 0 1 2.6 0v3.7c0 4-2.6 7-6.3 7-2.9 0-4.3-1.6-5.6-3.7l-1.8-3a1.4 1.4 0 0 1 2.3-1.5L7 13.5"/>',
  plus: '<path d="M12 5v14M5 12h14"/>',
  'plus-circle': '<circle cx="12" cy="12" r="9"/><path d="M12 8v8M8 12h8"/>',
  send: '<path d="M4.5 12L20 4.5 16.5 20l-4.2-6.3zM12.3 13.7L20 4.5"/>',
  image: '<rect x="3.5" y="4.5" width="17" height="15" rx="2.5"/><circle cx="9" cy="10" r="1.8"/><path d="M20.5 15.5l-5-5-9 9"/>',
  reply: '<path d="M9.5 7L4.5 12l5 5M5 12h9.5a5 5 0 0 1 5 5v1"/>',
  copy: '<rect x="8.5" y="8.5" width="11" height="11" rx="2"/><path d="M15.5 8.5V6.5a2 2 0 0 0-2-2h-7a2 2 0 0 0-2 2v7a2 2 0 0 0 2 2h2"/>',
  trash: '<path d="M4.5 7h15M9.5 7V5h5v2M6.5 7l1 12.5h9l1-12.5M10 11v5M14 11v5"/>',
  undo: '<path d="M9 14.5L4.5 10 9 5.5M5 10h9.5a5 5 0 0 1 0 10H11"/>',
  smile: '<circle cx="12" cy="12" r="8.5"/><path d="M8.5 14c.9 1.3 2.1 2 3.5 2s2.6-.7 3.5-2M9 9.5h.01M15 9.5h.01"/>',
  more: '<path d="M5.5 12h.01M12 12h.01M18.5 12h.01"/>',
  clock: '<circle cx="12" cy="12" r="8"/><path d="M12 7.5V12l3 2"/>',
  tick: '<path d="M5 12.5l4 4L19 7"/>',
  ticks: '<path d="M2.5 12.5l4 4L16 7M11.5 16l.5.5L21.5 7"/>',
  people: '<circle cx="9" cy="8.5" r="3.3"/><path d="M3 19c0-3.3 2.7-5.4 6-5.4s6 2.1 6 5.4M15.5 5.3a3.3 3.3 0 0 1 0 6.4M17.5 13.9c2 .6 3.5 2.3 3.5 5.1"/>',
  link: '<path d="M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1M14 10a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1"/>',
  qr: '<rect x="4" y="4" width="6" height="6" rx="1"/><rect x="14" y="4" width="6" height="6" rx="1"/><rect x="4" y="14" width="6" height="6" rx="1"/><path d="M14 14h2.5v2.5H14zM18 18h2M20 14v2M14 19.5V20"/>',
  leave: '<path d="M10 4.5H6.5a2 2 0 0 0-2 2v11a2 2 0 0 0 2 2H10M14 8.5l3.5 3.5-3.5 3.5M17.5 12H9"/>',
  'arrow-down': '<path d="M12 5v14M6 13l6 6 6-6"/>',
  info: '<circle cx="12" cy="12" r="9"/><path d="M12 11v5.5M12 7.5h.01"/>',
  file: '<path d="M14 3.5H7.5a2 2 0 0 0-2 2v13a2 2 0 0 0 2 2h9a2 2 0 0 0 2-2V8z"/><path d="M14 3.5V8h4.5M9 13h6M9 16.5h4"/>',
  wallet: '<path d="M4 7.5A2.5 2.5 0 0 1 6.5 5H18v3"/><path class="fillable" d="M4 7.5v10A2.5 2.5 0 0 0 6.5 20H20V8H6.5A2.5 2.5 0 0 1 4 5.5"/><path d="M16 14h.01"/>',
  transfer: '<path d="M5 9h13.5M15 5.5L18.5 9 15 12.5M19 15H5.5M9 11.5L5.5 15 9 18.5"/>',
  'red-packet': '<rect x="5" y="3" width="14" height="18" rx="2.2"/><path d="M5 8.5c2 1.6 4.4 2.4 7 2.4s5-.8 7-2.4"/><circle cx="12" cy="11" r="2"/>',
  topup: '<circle cx="12" cy="12" r="9"/><path d="M12 16.5v-9M8 11l4-4 4 4"/>',
  withdraw: '<circle cx="12" cy="12" r="9"/><path d="M12 7.5v9M8 13l4 4 4-4"/>',
  lock: '<rect x="5" y="10.5" width="14" height="10" rx="2"/><path d="M8 10.5V8a4 4 0 0 1 8 0v2.5M12 14.5v2.5"/>',
  list: '<path d="M8.5 6.5h11M8.5 12h11M8.5 17.5h11M4.5 6.5h.01M4.5 12h.01M4.5 17.5h.01"/>',
  star: '<path d="M12 4l2.4 5 5.4.6-4 3.7 1.1 5.4L12 16l-4.9 2.7 1.1-5.4-4-3.7 5.4-.6z"/>',
};

export function icon(name, extraClass = '') {
  const markup = PATHS[name];
  if (!markup) throw new Error(`unknown icon ${name}`);
  const tpl = document.createElement('template');
  tpl.innerHTML = `<svg class="icon ${extraClass}" viewBox="0 0 24 24" width="24" height="24" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" focusable="false">${markup}</svg>`;
  return tpl.content.firstChild;
}
