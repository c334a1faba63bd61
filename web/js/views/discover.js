// The Discover tab: Scan (payment codes), and Moments and Mini Programs, which arrive in later releases.

import { h } from '../dom.js';
import { icon } from '../icons.js';
import { topbar, group, row, tile } from '../ui.js';
import { currentPath } from '../router.js';

export const FEATURES = {
  moments: {
    title: 'Moments', icon: 'moments', color: '#f0883e',
    text: 'Share photos and thoughts with your contacts only. Friends can like and comment; everyone else sees nothing.',
  },
  scan: {
    title: 'Scan', icon: 'scan', color: '#2782d7', ready: true,
    text: 'Scan a merchant’s Plaza QR code, or paste a payment code, and pay with your PIN.',
  },
  'mini-programs': {
    title: 'Mini Programs', icon: 'apps', color: '#7a5fe0',
    text: 'Small apps from other developers that run inside Plaza: order, book, play — without installing anything.',
  },
};

function soon() {
  return h('span', { class: 'pill pill-soon' }, 'Soon');
}

export function discoverList() {
  const rows = h('div');
  const el = h('section', { class: 'screen' },
    topbar({ title: 'Discover' }),
    h('div', { class: 'scroll' }, rows));

  function update() {
    const path = currentPath();
    const item = (key) => row({
      href: `/discover/${key}`, lead: tile(FEATURES[key].icon, FEATURES[key].color), title: FEATURES[key].title,
      meta: FEATURES[key].ready ? null : soon(), current: path === `/discover/${key}`,
    });
    rows.replaceChildren(
      group(null, item('moments')),
      group(null, item('scan')),
      group(null, item('mini-programs')));
  }
  update();
  return { el, update, title: 'Discover' };
}

export function featurePage({ feature }) {
  const f = FEATURES[feature];
  if (!f) return null;
  const el = h('section', { class: 'screen' },
    topbar({ title: f.title, back: '/discover' }),
    h('div', { class: 'scroll' },
      h('div', { class: 'feature' },
        h('div', { class: 'feature-art', style: { background: f.color } }, icon(f.icon)),
        h('h2', { class: 'feature-title' }, f.title),
        h('span', { class: 'pill pill-soon' }, 'Coming soon'),
        h('p', { class: 'feature-text' }, f.text),
        h('p', { class: 'feature-note' }, 'This server will switch it on with an update. Nothing to install on your side.'))));
  return { el, title: f.title };
}
