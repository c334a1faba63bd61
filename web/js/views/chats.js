// The Chats tab: the conversation list (empty until messaging lands) and its desktop placeholder.

import { h, clear, changeGate } from '../dom.js';
import { topbar, emptyState, iconLink } from '../ui.js';
import { state } from '../state.js';

export function connectionChip() {
  const chip = h('span', { class: 'conn', role: 'status', 'aria-live': 'polite' });
  function update() {
    const s = state.events;
    // Only trouble is worth showing; a healthy link is silent.
    const text = s === 'online' ? '' : s === 'connecting' ? 'Connecting…' : 'Waiting for network…';
    chip.textContent = text;
    chip.hidden = !text || !state.me;
  }
  update();
  return { el: chip, update };
}

export function chatsList() {
  const chip = connectionChip();
  const body = h('div', { class: 'scroll' });
  const el = h('section', { class: 'screen' },
    topbar({ title: 'Chats', actions: [chip.el, iconLink('/contacts/add', 'user-plus', 'Add friends')] }),
    body);

  const gate = changeGate();

  function update() {
    chip.update();
    const hasContacts = !!(state.contacts.data && state.contacts.data.length > 0);
    if (!gate([hasContacts])) return;
    clear(body, emptyState({
      iconName: 'chats',
      title: 'No chats yet',
      text: hasContacts
        ? 'Messaging is on its way. Your conversations with contacts will appear here.'
        : 'Add contacts to start chatting. Your conversations will appear here.',
      action: hasContacts
        ? h('a', { class: 'btn btn-ghost', href: '/contacts' }, 'See contacts')
        : h('a', { class: 'btn btn-primary', href: '/contacts/add' }, 'Find people'),
    }));
  }
  update();
  return { el, update, title: 'Chats' };
}

export function placeholder(text) {
  return () => {
    const el = h('section', { class: 'screen screen-placeholder' },
      h('div', { class: 'placeholder' },
        h('img', { class: 'placeholder-logo', src: '/icons/logo.svg', width: 64, height: 64, alt: '' }),
        h('p', null, text)));
    return { el };
  };
}
