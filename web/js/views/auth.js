// Welcome, log in and create-account screens.

import { h } from '../dom.js';
import { Plaza } from '../api.js';
import { field, formError, button, busy } from '../ui.js';
import { checkUsername, checkPassword, checkDisplayName, normalizeUsername, LIMITS } from '../validate.js';
import { signIn } from '../session.js';
import { takeFlash } from '../router.js';

function logo(size = 72) {
  return h('img', { class: 'brand-logo', src: '/icons/logo.svg', width: size, height: size, alt: '' });
}

function shell(...content) {
  return h('div', { class: 'auth' },
    h('div', { class: 'auth-card' }, content),
    h('p', { class: 'auth-foot' }, 'Plaza · chat, pay, share — on a server you run.'));
}

export function welcomeView() {
  const el = shell(
    h('div', { class: 'auth-hero' },
      logo(96),
      h('h1', { class: 'auth-title' }, 'Plaza'),
      h('p', { class: 'auth-lead' }, 'Messages, friends and moments in one place.')),
    h('div', { class: 'auth-actions' },
      h('a', { class: 'btn btn-primary btn-block', href: '/register' }, 'Create account'),
      h('a', { class: 'btn btn-ghost btn-block', href: '/login' }, 'Log in')));
  return { el, title: 'Welcome to Plaza' };
}

function authHeader(title, lead) {
  return h('div', { class: 'auth-head' },
    h('a', { class: 'auth-brand', href: '/welcome', 'aria-label': 'Plaza home' }, logo(48)),
    h('h1', { class: 'auth-title auth-title-sm' }, title),
    lead ? h('p', { class: 'auth-lead' }, lead) : null);
}

export function loginView() {
  const username = field({
    label: 'Username', name: 'username', autocomplete: 'username', prefix: '@',
    autocapitalize: 'none', normalize: normalizeUsername, rule: (v) => (v ? '' : 'Enter your username.'),
  });
  const password = field({
    label: 'Password', name: 'password', type: 'password', autocomplete: 'current-password', reveal: true,
    rule: (v) => (v ? '' : 'Enter your password.'),
  });
  const error = formError();
  const flash = takeFlash();
  if (flash) {
    error.set(flash.message);
    if (flash.username) username.input.value = flash.username;
  }
  const submit = button('Log in', { type: 'submit', block: true });

  const form = h('form', { class: 'form', novalidate: true },
    error.el, username.el, password.el, submit,
    h('p', { class: 'auth-switch' }, 'New to Plaza? ', h('a', { href: '/register' }, 'Create an account')));

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    username.touch(); password.touch();
    const ok = [username, password].map((f) => f.check());
    const firstBad = ok.indexOf(false);
    if (firstBad >= 0) { [username, password][firstBad].input.focus(); return; }
    error.set('');
    busy(submit, async () => {
      try {
        const body = await Plaza.login(username.input.value.trim(), password.input.value);
        signIn(body);
      } catch (err) {
        error.set(err.message);
        password.input.select();
      }
    });
  });

  const el = shell(authHeader('Log in', 'Welcome back.'), form);
  return { el, title: 'Log in · Plaza', focus: username.input.value ? password.input : username.input };
}

export function registerView() {
  const displayName = field({
    label: 'Name', name: 'display_name', autocomplete: 'name', hint: 'Shown to people you chat with.',
    rule: checkDisplayName, maxChars: LIMITS.displayNameMax,
  });
  const username = field({
    label: 'Username', name: 'username', autocomplete: 'username', prefix: '@', autocapitalize: 'none',
    hint: `${LIMITS.usernameMin}–${LIMITS.usernameMax} characters: a–z, 0–9 and _. People find you by it.`,
    rule: checkUsername, normalize: normalizeUsername, maxlength: LIMITS.usernameMax,
  });
  const password = field({
    label: 'Password', name: 'password', type: 'password', autocomplete: 'new-password', reveal: true,
    hint: `At least ${LIMITS.passwordMin} characters.`, rule: checkPassword,
  });
  const error = formError();
  const submit = button('Create account', { type: 'submit', block: true });
  const fields = [displayName, username, password];

  const form = h('form', { class: 'form', novalidate: true },
    error.el, displayName.el, username.el, password.el, submit,
    h('p', { class: 'auth-switch' }, 'Already have an account? ', h('a', { href: '/login' }, 'Log in')));

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    fields.forEach((f) => f.touch());
    const ok = fields.map((f) => f.check());
    const firstBad = ok.indexOf(false);
    if (firstBad >= 0) { fields[firstBad].input.focus(); return; }
    error.set('');
    busy(submit, async () => {
      try {
        const body = await Plaza.register(username.input.value, password.input.value, displayName.input.value.trim());
        signIn(body);
      } catch (err) {
        if (err.code === 'username_taken') {
          username.setError(err.message);
          username.input.focus();
        } else {
          error.set(err.message);
        }
      }
    });
  });

  const el = shell(authHeader('Create your account', 'It takes less than a minute.'), form);
  return { el, title: 'Create account · Plaza', focus: displayName.input };
}
