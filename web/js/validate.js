// Form rules that mirror the server's, so people see a problem before they submit.
// The server stays the authority: its error message is shown when it disagrees.

export const LIMITS = {
  usernameMin: 3,
  usernameMax: 32,
  passwordMin: 8,
  passwordMaxBytes: 256,
  displayNameMax: 64,
  bioMax: 280,
  greetingMax: 140,
};

// Length in code points, the way a person counts characters.
export function charCount(str) {
  return Array.from(str).length;
}

// The server folds usernames to lower case; the form does it as people type
// so that what they see is the name they get.
export function normalizeUsername(value) {
  return value.toLowerCase();
}

// C0 and C1 control characters, newlines included: the server refuses them in
// names, bios and greetings because they render differently everywhere.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

export function checkUsername(value) {
  if (!value) return 'Enter a username.';
  if (!/^[a-z0-9_]*$/.test(value)) return 'Use only letters a–z, digits and _.';
  if (value.length < LIMITS.usernameMin) return `At least ${LIMITS.usernameMin} characters.`;
  if (value.length > LIMITS.usernameMax) return `At most ${LIMITS.usernameMax} characters.`;
  return '';
}

export function checkPassword(value) {
  if (!value) return 'Enter a password.';
  if (charCount(value) < LIMITS.passwordMin) return `At least ${LIMITS.passwordMin} characters.`;
  if (new TextEncoder().encode(value).length > LIMITS.passwordMaxBytes) return 'This password is too long.';
  return '';
}

export function checkDisplayName(value) {
  const trimmed = value.trim();
  if (!trimmed) return 'Enter the name people will see.';
  if (CONTROL.test(value)) return 'Use a single line without special characters.';
  if (charCount(trimmed) > LIMITS.displayNameMax) return `At most ${LIMITS.displayNameMax} characters.`;
  return '';
}

export function checkBio(value) {
  if (CONTROL.test(value)) return 'Use a single line without special characters.';
  if (charCount(value) > LIMITS.bioMax) return `At most ${LIMITS.bioMax} characters.`;
  return '';
}

export function checkGreeting(value) {
  if (CONTROL.test(value)) return 'Use a single line without special characters.';
  if (charCount(value) > LIMITS.greetingMax) return `At most ${LIMITS.greetingMax} characters.`;
  return '';
}
