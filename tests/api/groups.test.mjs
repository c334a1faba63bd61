// API tests of groups: renaming, adding and removing members, leaving, roles, ownership, invite links and QR codes, the member cap, and the system messages and events of every change.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { expectError, openWs, register, startServer } from './lib.mjs';

let srv;
// A second server with the test-only limits lowered: 5 members a group,
// invites that expire after 3 seconds.
let small;
const SMALL_MAX = 5;
const SMALL_TTL_MS = 3000;
before(async () => {
  srv = await startServer();
  small = await startServer({ env: { PLAZA_TEST_GROUP_MAX: String(SMALL_MAX), PLAZA_TEST_INVITE_TTL_MS: String(SMALL_TTL_MS) } });
});
after(async () => {
  await srv?.stop();
  await small?.stop();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function befriend(a, b, s = srv) {
  const r = await s.call('POST', '/v1/contacts/requests', { token: a.token, body: { user_id: b.user.id } });
  assert.equal(r.status, 201, r.text);
  const ok = await s.call('POST', `/v1/contacts/requests/${r.json.request.id}/accept`, { token: b.token });
  assert.equal(ok.status, 200, ok.text);
}

/** An owner and n contacts of theirs, with a group of all of them. */
async function group(n, { s = srv, title = 'Book club' } = {}) {
  const owner = await register(s);
  const members = [];
  for (let i = 0; i < n; i++) {
    const m = await register(s);
    await befriend(owner, m, s);
    members.push(m);
  }
  const res = await s.call('POST', '/v1/conversations', {
    token: owner.token, body: { type: 'group', title, member_ids: members.map((m) => m.user.id) },
  });
  assert.equal(res.status, 201, res.text);
  return { owner, members, conv: res.json.conversation, id: res.json.conversation.id };
}

const getConv = (who, id, s = srv) => s.call('GET', `/v1/conversations/${id}`, { token: who.token });
const rename = (who, id, title, s = srv) => s.call('PATCH', `/v1/conversations/${id}`, { token: who.token, body: { title } });
const addMembers = (who, id, users, s = srv) => s.call('POST', `/v1/conversations/${id}/members`, {
  token: who.token, body: { user_ids: users.map((u) => u.user.id) },
});
const removeMember = (who, id, user, s = srv) => s.call('DELETE', `/v1/conversations/${id}/members/${user.user.id}`, { token: who.token });
const setRole = (who, id, user, role) => srv.call('PUT', `/v1/conversations/${id}/members/${user.user.id}/role`, {
  token: who.token, body: { role },
});
const transfer = (who, id, user) => srv.call('POST', `/v1/conversations/${id}/owner`, { token: who.token, body: { user_id: user.user.id } });
const createInvite = (who, id, s = srv) => s.call('POST', `/v1/conversations/${id}/invites`, { token: who.token });
const join = (who, code, s = srv) => s.call('POST', `/v1/invites/${code}/join`, { token: who.token });
const send = (who, id, text, clientId) => srv.call('POST', `/v1/conversations/${id}/messages`, {
  token: who.token, body: { client_id: clientId, text },
});
const history = async (who, id, s = srv) => {
  const res = await s.call('GET', `/v1/conversations/${id}/messages`, { token: who.token });
  assert.equal(res.status, 200, res.text);
  return res.json.messages;
};
const events = async (who, since = 0, s = srv) => {
  const res = await s.call('GET', `/v1/sync?since=${since}&limit=1000`, { token: who.token });
  assert.equal(res.status, 200, res.text);
  return res.json.events;
};
const head = async (who, s = srv) => {
  const ev = await events(who, 0, s);
  return ev.length ? ev[ev.length - 1].seq : 0;
};
const roleOf = (conv, who) => conv.members.find((m) => m.user.id === who.user.id)?.role;
const ids = (conv) => conv.members.map((m) => m.user.id).sort();
const systemMessages = async (who, id) => (await history(who, id)).filter((m) => m.type === 'system');

describe('GET /v1/conversations/{id}', () => {
  test('a member sees the conversation with roles, last message and unread count; others do not', async () => {
    const { owner, members: [x], id } = await group(1);
    assert.equal((await send(x, id, 'hello', 'c1')).status, 201);
    const res = await getConv(owner, id);
    assert.equal(res.status, 200, res.text);
    const c = res.json.conversation;
    assert.equal(c.id, id);
    assert.equal(c.type, 'group');
    assert.equal(c.title, 'Book club');
    assert.equal(c.member_count, 2);
    assert.equal(roleOf(c, owner), 'owner');
    assert.equal(roleOf(c, x), 'member');
    assert.equal(c.last_message.text, 'hello');
    assert.equal(c.unread_count, 1);
    assert.equal((await getConv(x, id)).json.conversation.unread_count, 0);
    // It reads as the list does: a last message deleted for me gives way.
    const hello = c.last_message.id;
    assert.equal((await send(x, id, 'second', 'c2')).status, 201);
    const second = (await getConv(owner, id)).json.conversation.last_message;
    assert.equal(second.text, 'second');
    assert.equal((await srv.call('DELETE', `/v1/conversations/${id}/messages/${second.id}`, { token: owner.token })).status, 204);
    assert.equal((await getConv(owner, id)).json.conversation.last_message.id, hello);
    const listed = (await srv.call('GET', '/v1/conversations', { token: owner.token })).json.conversations.find((v) => v.id === id);
    assert.deepEqual((await getConv(owner, id)).json.conversation, listed);

    const stranger = await register(srv);
    expectError(assert, await getConv(stranger, id), 403, 'not_member');
    expectError(assert, await getConv(owner, '123456789'), 404, 'not_found');
    expectError(assert, await getConv(owner, 'abc'), 400, 'invalid_request');
    expectError(assert, await srv.call('GET', `/v1/conversations/${id}`), 401, 'unauthorized');
  });
});

describe('renaming', () => {
  test('the owner renames: every member gets conversation.updated and a system message', async () => {
    const { owner, members: [x, y], id } = await group(2);
    const since = await head(x);
    const res = await rename(owner, id, 'Readers 📚');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.conversation.title, 'Readers 📚');
    assert.equal((await getConv(y, id)).json.conversation.title, 'Readers 📚');

    const [sys] = await systemMessages(x, id);
    assert.equal(sys.type, 'system');
    assert.equal(sys.sender_id, owner.user.id);
    assert.equal(sys.client_id, null);
    assert.equal(sys.text, `${owner.user.display_name} renamed the group to “Readers 📚”`);
    assert.deepEqual(sys.system, { action: 'renamed', actor_id: owner.user.id, user_ids: [], title: 'Readers 📚' });

    const ev = await events(x, since);
    assert.deepEqual(ev.map((e) => e.type), ['conversation.updated', 'message.new']);
    assert.equal(ev[0].conversation.title, 'Readers 📚');
    assert.equal(ev[1].message.id, sys.id);
    // The actor's own system message is not unread for them.
    assert.equal((await getConv(owner, id)).json.conversation.unread_count, 0);
    assert.equal((await getConv(x, id)).json.conversation.unread_count, 1);

    // The actor cannot take the record back, nor edit it.
    expectError(assert, await srv.call('POST', `/v1/conversations/${id}/messages/${sys.id}/recall`, { token: owner.token }), 409, 'not_recallable');
    expectError(assert, await srv.call('PATCH', `/v1/conversations/${id}/messages/${sys.id}`, { token: owner.token, body: { text: 'no' } }), 409, 'not_editable');
    assert.equal((await systemMessages(x, id))[0].text, sys.text);

    // The same title again changes nothing and announces nothing.
    assert.equal((await rename(owner, id, 'Readers 📚')).status, 200);
    assert.equal((await systemMessages(x, id)).length, 1);
  });

  test('a member is 403 not_admin; bad titles 400; direct chats 400; outsiders 403 not_member', async () => {
    const { owner, members: [x], id } = await group(1);
    expectError(assert, await rename(x, id, 'Mine now'), 403, 'not_admin');
    expectError(assert, await rename(owner, id, '   '), 400, 'invalid_request');
    expectError(assert, await rename(owner, id, 'x'.repeat(65)), 400, 'invalid_request');
    expectError(assert, await srv.call('PATCH', `/v1/conversations/${id}`, { token: owner.token, body: { title: 7 } }), 400, 'invalid_request');
    expectError(assert, await srv.call('PATCH', `/v1/conversations/${id}`, { token: owner.token, raw: '{' }), 400, 'malformed_json');
    const stranger = await register(srv);
    expectError(assert, await rename(stranger, id, 'Hi'), 403, 'not_member');
    expectError(assert, await rename(owner, '123456789', 'Hi'), 404, 'not_found');
    const direct = await srv.call('POST', '/v1/conversations', { token: owner.token, body: { type: 'direct', user_id: x.user.id } });
    expectError(assert, await rename(owner, direct.json.conversation.id, 'Us'), 400, 'invalid_request');
    assert.equal((await getConv(owner, id)).json.conversation.title, 'Book club');
    assert.equal((await systemMessages(owner, id)).length, 0);
  });
});

describe('adding members', () => {
  test('newcomers get conversation.new, the others conversation.updated, all the system message', async () => {
    const { owner, members: [x], id } = await group(1);
    const [n1, n2] = [await register(srv), await register(srv)];
    await befriend(owner, n1);
    await befriend(n2, owner);
    const sinceX = await head(x);
    const res = await addMembers(owner, id, [n1, n2, n1, owner, x]);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(ids(res.json.conversation), [owner, x, n1, n2].map((u) => u.user.id).sort());
    assert.equal(roleOf(res.json.conversation, n1), 'member');

    const [sys] = await systemMessages(n1, id);
    assert.equal(sys.text, `${owner.user.display_name} added ${n1.user.display_name} and ${n2.user.display_name}`);
    assert.deepEqual(sys.system, { action: 'added', actor_id: owner.user.id, user_ids: [n1.user.id, n2.user.id] });

    const evNew = await events(n1);
    assert.deepEqual(evNew.map((e) => e.type), ['conversation.new', 'message.new']);
    assert.equal(evNew[0].conversation.id, id);
    assert.equal(evNew[0].conversation.members.length, 4);
    const evX = await events(x, sinceX);
    assert.deepEqual(evX.map((e) => e.type), ['conversation.updated', 'message.new']);
    assert.equal(evX[0].conversation.members.length, 4);

    // The newcomer is a member: they read and send.
    assert.ok((await history(n2, id)).length >= 1);
    assert.equal((await send(n2, id, 'hi all', 'n2-1')).status, 201);

    // Adding members again changes and announces nothing.
    const again = await addMembers(owner, id, [n1]);
    assert.equal(again.status, 200);
    assert.equal(again.json.conversation.member_count, 4);
    assert.equal((await systemMessages(owner, id)).length, 1);
  });

  test('"and N others" past three names', async () => {
    const { owner, id } = await group(1);
    const more = [];
    for (let i = 0; i < 5; i++) {
      const u = await register(srv);
      await befriend(owner, u);
      more.push(u);
    }
    assert.equal((await addMembers(owner, id, more)).status, 200);
    const [sys] = await systemMessages(owner, id);
    const names = more.slice(0, 3).map((u) => u.user.display_name).join(', ');
    assert.equal(sys.text, `${owner.user.display_name} added ${names} and 2 others`);
    assert.equal(sys.system.user_ids.length, 5);
  });

  test('members cannot add; non-contacts, unknown users and bad lists are refused; nothing changes', async () => {
    const { owner, members: [x], id } = await group(1);
    const friend = await register(srv);
    const stranger = await register(srv);
    await befriend(owner, friend);
    await befriend(x, friend);
    expectError(assert, await addMembers(x, id, [friend]), 403, 'not_admin');
    expectError(assert, await addMembers(owner, id, [friend, stranger]), 403, 'not_contacts');
    expectError(assert, await addMembers(owner, id, [{ user: { id: '123456789' } }]), 404, 'not_found');
    expectError(assert, await addMembers(owner, id, []), 400, 'invalid_request');
    expectError(assert, await srv.call('POST', `/v1/conversations/${id}/members`, { token: owner.token, body: { user_ids: [5] } }), 400, 'invalid_request');
    expectError(assert, await srv.call('POST', `/v1/conversations/${id}/members`, { token: owner.token, body: {} }), 400, 'invalid_request');
    const tooMany = Array.from({ length: 501 }, (_, i) => String(1000 + i));
    expectError(assert, await srv.call('POST', `/v1/conversations/${id}/members`, { token: owner.token, body: { user_ids: tooMany } }), 400, 'invalid_request');
    const c = (await getConv(owner, id)).json.conversation;
    assert.equal(c.member_count, 2);
    assert.equal((await systemMessages(owner, id)).length, 0);
    expectError(assert, await getConv(friend, id), 403, 'not_member');
  });
});

describe('removing and leaving', () => {
  test('an admin removes a member, who loses the group but keeps their past events', async () => {
    const { owner, members: [admin, m1, m2], id } = await group(3);
    assert.equal((await setRole(owner, id, admin, 'admin')).status, 200);
    assert.equal((await send(owner, id, 'before', 'o-1')).status, 201);
    const pastM1 = await events(m1);
    const sinceM2 = await head(m2);

    const res = await removeMember(admin, id, m1);
    assert.equal(res.status, 204, res.text);

    // The removed member: 403 not_member on every read and write.
    expectError(assert, await getConv(m1, id), 403, 'not_member');
    expectError(assert, await srv.call('GET', `/v1/conversations/${id}/messages`, { token: m1.token }), 403, 'not_member');
    expectError(assert, await send(m1, id, 'still here?', 'm1-1'), 403, 'not_member');
    const last = (await history(owner, id))[0];
    expectError(assert, await srv.call('POST', `/v1/conversations/${id}/read`, { token: m1.token, body: { message_id: last.id } }), 403, 'not_member');
    const listed = await srv.call('GET', '/v1/conversations', { token: m1.token });
    assert.ok(!listed.json.conversations.some((c) => c.id === id));
    // Their stream keeps what they saw and ends with conversation.removed.
    const after = await events(m1);
    assert.deepEqual(after.slice(0, pastM1.length), pastM1);
    assert.deepEqual(after.slice(pastM1.length).map((e) => e.type), ['conversation.removed']);
    assert.equal(after[after.length - 1].conversation_id, id);

    // The others: conversation.updated without them, and the system message.
    const ev = await events(m2, sinceM2);
    assert.deepEqual(ev.map((e) => e.type), ['conversation.updated', 'message.new']);
    assert.ok(!ids(ev[0].conversation).includes(m1.user.id));
    assert.equal(ev[1].message.text, `${admin.user.display_name} removed ${m1.user.display_name}`);
    assert.deepEqual(ev[1].message.system, { action: 'removed', actor_id: admin.user.id, user_ids: [m1.user.id] });
  });

  test('who may remove whom: members nobody, admins members only, the owner anyone', async () => {
    const { owner, members: [a1, a2, m1, m2], id } = await group(4);
    assert.equal((await setRole(owner, id, a1, 'admin')).status, 200);
    assert.equal((await setRole(owner, id, a2, 'admin')).status, 200);
    expectError(assert, await removeMember(m1, id, m2), 403, 'not_admin');
    expectError(assert, await removeMember(a1, id, owner), 403, 'not_owner');
    expectError(assert, await removeMember(a1, id, a2), 403, 'not_owner');
    const stranger = await register(srv);
    expectError(assert, await removeMember(owner, id, stranger), 404, 'not_found');
    expectError(assert, await removeMember(stranger, id, m1), 403, 'not_member');
    expectError(assert, await srv.call('DELETE', `/v1/conversations/${id}/members/abc`, { token: owner.token }), 400, 'invalid_request');
    assert.equal((await getConv(owner, id)).json.conversation.member_count, 5);
    assert.equal((await removeMember(owner, id, a2)).status, 204);
    assert.equal((await removeMember(a1, id, m2)).status, 204);
    assert.deepEqual(ids((await getConv(owner, id)).json.conversation), [owner, a1, m1].map((u) => u.user.id).sort());
  });

  test('a member leaves by removing themselves', async () => {
    const { owner, members: [x, y], id } = await group(2);
    assert.equal((await removeMember(y, id, y)).status, 204);
    expectError(assert, await getConv(y, id), 403, 'not_member');
    const [sys] = await systemMessages(x, id);
    assert.equal(sys.text, `${y.user.display_name} left the group`);
    assert.deepEqual(sys.system, { action: 'left', actor_id: y.user.id, user_ids: [y.user.id] });
    assert.equal((await events(y)).at(-1).type, 'conversation.removed');
    assert.equal((await getConv(owner, id)).json.conversation.member_count, 2);
  });

  test('the owner leaving hands the group to the longest-standing admin, else member; the last one ends it', async () => {
    const owner = await register(srv);
    const [m1, a1, a2] = [await register(srv), await register(srv), await register(srv)];
    for (const u of [m1, a1, a2]) await befriend(owner, u);
    const res = await srv.call('POST', '/v1/conversations', {
      token: owner.token, body: { type: 'group', title: 'Heirs', member_ids: [m1.user.id] },
    });
    const id = res.json.conversation.id;
    // Joined in this order: owner, m1, a1, a2; a2 made admin before a1.
    assert.equal((await addMembers(owner, id, [a1])).status, 200);
    assert.equal((await addMembers(owner, id, [a2])).status, 200);
    assert.equal((await setRole(owner, id, a2, 'admin')).status, 200);
    assert.equal((await setRole(owner, id, a1, 'admin')).status, 200);

    assert.equal((await removeMember(owner, id, owner)).status, 204);
    let c = (await getConv(m1, id)).json.conversation;
    assert.equal(c.owner_id, a1.user.id);
    assert.equal(roleOf(c, a1), 'owner');
    const sys = (await systemMessages(m1, id))[0];
    assert.equal(sys.text, `${owner.user.display_name} left the group; ${a1.user.display_name} is now the owner`);
    assert.equal(sys.system.owner_id, a1.user.id);

    // Then the remaining admin, before the longer-standing member.
    assert.equal((await removeMember(a1, id, a1)).status, 204);
    assert.equal((await getConv(m1, id)).json.conversation.owner_id, a2.user.id);
    // No admin left: the longest-standing member.
    assert.equal((await removeMember(a2, id, a2)).status, 204);
    c = (await getConv(m1, id)).json.conversation;
    assert.equal(c.owner_id, m1.user.id);
    assert.equal(roleOf(c, m1), 'owner');

    // The last member leaving ends the group: it is gone for everyone.
    const invite = await createInvite(m1, id);
    assert.equal(invite.status, 201);
    assert.equal((await removeMember(m1, id, m1)).status, 204);
    expectError(assert, await getConv(m1, id), 404, 'not_found');
    expectError(assert, await getConv(owner, id), 404, 'not_found');
    expectError(assert, await join(owner, invite.json.invite.code), 404, 'not_found');
    assert.equal((await events(m1)).at(-1).type, 'conversation.removed');
  });
});

describe('roles and ownership', () => {
  test('the owner makes admins, who may then rename, add and remove members; and takes it back', async () => {
    const { owner, members: [x, y], id } = await group(2);
    const friend = await register(srv);
    await befriend(x, friend);
    const res = await setRole(owner, id, x, 'admin');
    assert.equal(res.status, 200, res.text);
    assert.equal(roleOf(res.json.conversation, x), 'admin');
    const [sys] = await systemMessages(y, id);
    assert.equal(sys.text, `${owner.user.display_name} made ${x.user.display_name} an admin`);
    assert.deepEqual(sys.system, { action: 'role', actor_id: owner.user.id, user_ids: [x.user.id], role: 'admin' });

    assert.equal((await rename(x, id, 'Run by x')).status, 200);
    assert.equal((await addMembers(x, id, [friend])).status, 200);
    assert.equal((await removeMember(x, id, friend)).status, 204);
    assert.equal((await createInvite(x, id)).status, 201);

    assert.equal((await setRole(owner, id, x, 'member')).status, 200);
    assert.equal((await systemMessages(y, id))[0].text, `${owner.user.display_name} removed ${x.user.display_name} from the admins`);
    expectError(assert, await rename(x, id, 'Not any more'), 403, 'not_admin');
    // The same role again: nothing to announce.
    const n = (await systemMessages(y, id)).length;
    assert.equal((await setRole(owner, id, x, 'member')).status, 200);
    assert.equal((await systemMessages(y, id)).length, n);
  });

  test('only the owner changes roles; bad roles, the owner and non-members are refused', async () => {
    const { owner, members: [x, y], id } = await group(2);
    assert.equal((await setRole(owner, id, x, 'admin')).status, 200);
    expectError(assert, await setRole(x, id, y, 'admin'), 403, 'not_owner');
    expectError(assert, await setRole(y, id, x, 'member'), 403, 'not_owner');
    expectError(assert, await setRole(owner, id, y, 'owner'), 400, 'invalid_request');
    expectError(assert, await setRole(owner, id, y, 'boss'), 400, 'invalid_request');
    expectError(assert, await setRole(owner, id, owner, 'member'), 400, 'invalid_request');
    const stranger = await register(srv);
    expectError(assert, await setRole(owner, id, stranger, 'admin'), 404, 'not_found');
    const c = (await getConv(owner, id)).json.conversation;
    assert.equal(roleOf(c, y), 'member');
    assert.equal(roleOf(c, owner), 'owner');
  });

  test('ownership transfer: the new owner owns it, the former one stays an admin', async () => {
    const { owner, members: [x, y], id } = await group(2);
    expectError(assert, await transfer(x, id, y), 403, 'not_owner');
    const stranger = await register(srv);
    expectError(assert, await transfer(owner, id, stranger), 404, 'not_found');
    expectError(assert, await srv.call('POST', `/v1/conversations/${id}/owner`, { token: owner.token, body: {} }), 400, 'invalid_request');

    const res = await transfer(owner, id, x);
    assert.equal(res.status, 200, res.text);
    const c = res.json.conversation;
    assert.equal(c.owner_id, x.user.id);
    assert.equal(roleOf(c, x), 'owner');
    assert.equal(roleOf(c, owner), 'admin');
    const [sys] = await systemMessages(y, id);
    assert.equal(sys.text, `${owner.user.display_name} made ${x.user.display_name} the owner`);
    assert.deepEqual(sys.system, { action: 'owner', actor_id: owner.user.id, user_ids: [x.user.id], owner_id: x.user.id });
    // The former owner lost what only owners may do.
    expectError(assert, await setRole(owner, id, y, 'admin'), 403, 'not_owner');
    assert.equal((await setRole(x, id, y, 'admin')).status, 200);
  });
});

describe('invites', () => {
  test('an admin makes a link; anyone signed in sees the group and joins, once', async () => {
    const { owner, members: [x], id } = await group(1, { title: 'Open house' });
    const res = await createInvite(owner, id);
    assert.equal(res.status, 201, res.text);
    const inv = res.json.invite;
    assert.match(inv.code, /^[A-Za-z0-9_-]{22}$/);
    assert.equal(inv.url, `/join/${inv.code}`);
    const week = Date.parse(inv.expires_at) - Date.now();
    assert.ok(week > 6.9 * 86400e3 && week <= 7 * 86400e3, inv.expires_at);

    const guest = await register(srv);
    const seen = await srv.call('GET', `/v1/invites/${inv.code}`, { token: guest.token });
    assert.equal(seen.status, 200, seen.text);
    assert.deepEqual(seen.json.invite.conversation, { id, title: 'Open house', member_count: 2 });
    assert.equal(seen.json.invite.is_member, false);
    assert.equal(seen.json.invite.code, inv.code);
    expectError(assert, await srv.call('GET', `/v1/invites/${inv.code}`), 401, 'unauthorized');

    const sinceX = await head(x);
    const joined = await join(guest, inv.code);
    assert.equal(joined.status, 200, joined.text);
    assert.equal(roleOf(joined.json.conversation, guest), 'member');
    assert.equal(joined.json.conversation.member_count, 3);
    const [sys] = await systemMessages(x, id);
    assert.equal(sys.text, `${guest.user.display_name} joined the group with an invite link`);
    assert.deepEqual(sys.system, { action: 'joined', actor_id: guest.user.id, user_ids: [guest.user.id] });
    assert.deepEqual((await events(guest)).map((e) => e.type), ['conversation.new', 'message.new']);
    assert.deepEqual((await events(x, sinceX)).map((e) => e.type), ['conversation.updated', 'message.new']);

    // Joining again is a no-op; the preview now says so.
    const again = await join(guest, inv.code);
    assert.equal(again.status, 200);
    assert.equal(again.json.conversation.member_count, 3);
    assert.equal((await systemMessages(x, id)).length, 1);
    assert.equal((await srv.call('GET', `/v1/invites/${inv.code}`, { token: guest.token })).json.invite.is_member, true);
  });

  test('members cannot make links; unknown and malformed codes are 404', async () => {
    const { owner, members: [x], id } = await group(1);
    expectError(assert, await createInvite(x, id), 403, 'not_admin');
    const stranger = await register(srv);
    expectError(assert, await createInvite(stranger, id), 403, 'not_member');
    expectError(assert, await createInvite(owner, '123456789'), 404, 'not_found');
    for (const code of ['AAAAAAAAAAAAAAAAAAAAAA', 'short', '%2E%2E', 'a'.repeat(200)]) {
      expectError(assert, await srv.call('GET', `/v1/invites/${code}`, { token: x.token }), 404, 'not_found');
      expectError(assert, await join(x, code), 404, 'not_found');
    }
  });

  test('a revoked link stops working: 410 invite_revoked; only admins revoke', async () => {
    const { owner, members: [x], id } = await group(1);
    const { code } = (await createInvite(owner, id)).json.invite;
    expectError(assert, await srv.call('DELETE', `/v1/invites/${code}`, { token: x.token }), 403, 'not_admin');
    const guest = await register(srv);
    expectError(assert, await srv.call('DELETE', `/v1/invites/${code}`, { token: guest.token }), 403, 'not_member');
    assert.equal((await srv.call('DELETE', `/v1/invites/${code}`, { token: owner.token })).status, 204);
    assert.equal((await srv.call('DELETE', `/v1/invites/${code}`, { token: owner.token })).status, 204);
    expectError(assert, await srv.call('GET', `/v1/invites/${code}`, { token: guest.token }), 410, 'invite_revoked');
    expectError(assert, await join(guest, code), 410, 'invite_revoked');
    expectError(assert, await srv.call('GET', `/v1/invites/${code}/qr.svg`, { token: guest.token }), 410, 'invite_revoked');
    expectError(assert, await getConv(guest, id), 403, 'not_member');
    expectError(assert, await srv.call('DELETE', '/v1/invites/AAAAAAAAAAAAAAAAAAAAAA', { token: owner.token }), 404, 'not_found');
  });

  test('the QR code is an SVG of the absolute join URL, http unless the proxy says https', async () => {
    const { owner, id } = await group(1);
    const { code } = (await createInvite(owner, id)).json.invite;
    // fetch() sends its own Host: node:http lets the test choose it.
    const qr = (headers) => new Promise((resolve, reject) => {
      const req = http.request(srv.url(`/v1/invites/${code}/qr.svg`), {
        headers: { ...headers, authorization: `Bearer ${owner.token}` },
      }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => { text += d; });
        res.on('end', () => {
          let json;
          try { json = JSON.parse(text); } catch { json = undefined; }
          resolve({ status: res.statusCode, headers: new Headers(res.headers), text, json });
        });
      });
      req.on('error', reject);
      req.end();
    });
    const plain = await qr({ host: 'plaza.example:8080' });
    assert.equal(plain.status, 200, plain.text);
    assert.equal(plain.headers.get('content-type'), 'image/svg+xml');
    assert.equal(plain.headers.get('x-content-type-options'), 'nosniff');
    assert.match(plain.text, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" viewBox="0 0 (\d+) \1"/);
    assert.match(plain.text, /<path fill="#000" d="(M\d+ \d+h\d+v1h-\d+z)+"\/><\/svg>\n$/);
    // The same request draws the same code; another origin another code.
    assert.equal((await qr({ host: 'plaza.example:8080' })).text, plain.text);
    const https = await qr({ host: 'plaza.example:8080', 'x-forwarded-proto': 'https' });
    assert.equal(https.status, 200);
    assert.notEqual(https.text, plain.text);
    assert.notEqual((await qr({ host: 'other.example' })).text, plain.text);
    const bad = await qr({ host: 'evil.example/x?y=1' });
    expectError(assert, bad, 400, 'invalid_request');
    assert.match(bad.json.error.message, /Host/);
    expectError(assert, await srv.call('GET', `/v1/invites/${code}/qr.svg`), 401, 'unauthorized');
    expectError(assert, await srv.call('GET', '/v1/invites/AAAAAAAAAAAAAAAAAAAAAA/qr.svg', { token: owner.token }), 404, 'not_found');
  });

  test('an expired link is 410 invite_expired (test-only 3 s lifetime)', async () => {
    const { owner, id } = await group(1, { s: small });
    const res = await createInvite(owner, id, small);
    assert.equal(res.status, 201, res.text);
    const { code, expires_at: expires } = res.json.invite;
    assert.ok(Date.parse(expires) - Date.now() <= SMALL_TTL_MS);
    await sleep(Math.max(0, Date.parse(expires) - Date.now()) + 200);
    const guest = await register(small);
    expectError(assert, await small.call('GET', `/v1/invites/${code}`, { token: guest.token }), 410, 'invite_expired');
    expectError(assert, await join(guest, code, small), 410, 'invite_expired');
    expectError(assert, await small.call('GET', `/v1/invites/${code}/qr.svg`, { token: guest.token }), 410, 'invite_expired');
    expectError(assert, await getConv(guest, id, small), 403, 'not_member');
  });
});

describe('the member cap', () => {
  test('adding or joining past the cap is 409 group_full and changes nothing (test-only cap of 5)', async () => {
    const { owner, id } = await group(2, { s: small });
    const extra = [];
    for (let i = 0; i < 3; i++) {
      const u = await register(small);
      await befriend(owner, u, small);
      extra.push(u);
    }
    expectError(assert, await addMembers(owner, id, extra, small), 409, 'group_full');
    let c = (await getConv(owner, id, small)).json.conversation;
    assert.equal(c.member_count, 3);
    const { code } = (await createInvite(owner, id, small)).json.invite;
    assert.equal((await addMembers(owner, id, extra.slice(0, 2), small)).status, 200);
    c = (await getConv(owner, id, small)).json.conversation;
    assert.equal(c.member_count, SMALL_MAX);
    expectError(assert, await join(extra[2], code, small), 409, 'group_full');
    expectError(assert, await addMembers(owner, id, [extra[2]], small), 409, 'group_full');
    // Someone leaving makes room.
    assert.equal((await removeMember(owner, id, extra[0], small)).status, 204);
    assert.equal((await join(extra[2], code, small)).status, 200);
    assert.equal((await getConv(owner, id, small)).json.conversation.member_count, SMALL_MAX);
  });

  test('a group of 60 works: every member is listed, gets the events and can send', async () => {
    const owner = await register(srv);
    // Sign-ups run side by side (the server hashes two passwords at a time).
    const people = await Promise.all(Array.from({ length: 59 }, () => register(srv)));
    for (const p of people) await befriend(owner, p);
    const res = await srv.call('POST', '/v1/conversations', {
      token: owner.token, body: { type: 'group', title: 'Sixty', member_ids: people.slice(0, 30).map((p) => p.user.id) },
    });
    assert.equal(res.status, 201, res.text);
    const id = res.json.conversation.id;
    const added = await addMembers(owner, id, people.slice(30));
    assert.equal(added.status, 200, added.text);
    assert.equal(added.json.conversation.member_count, 60);
    assert.equal(added.json.conversation.members.length, 60);
    const [sys] = await systemMessages(people[58], id);
    assert.equal(sys.system.user_ids.length, 29);
    assert.match(sys.text, / and 26 others$/);
    assert.equal((await send(people[58], id, 'the last to come', 'p58')).status, 201);
    for (const p of [owner, people[0], people[30]]) {
      const ev = await events(p);
      assert.equal(ev.at(-1).type, 'message.new');
      assert.equal(ev.at(-1).message.text, 'the last to come');
    }
  });
});

describe('live events on the WebSocket', () => {
  test('a connected member receives the change in seq order, and a removed one conversation.removed', async () => {
    const { owner, members: [x, y], id } = await group(2);
    const c = openWs(srv);
    await c.opened;
    c.send({ type: 'hello', token: y.token, since: await head(y) });
    assert.equal((await c.next()).type, 'ready');
    const next = async () => {
      for (;;) {
        const f = await c.next();
        if (f.seq !== undefined) return f;
      }
    };
    assert.equal((await rename(owner, id, 'Live')).status, 200);
    const a = await next();
    const b = await next();
    assert.deepEqual([a.type, b.type], ['conversation.updated', 'message.new']);
    assert.equal(b.seq, a.seq + 1);
    assert.equal((await removeMember(owner, id, y)).status, 204);
    const removed = await next();
    assert.equal(removed.type, 'conversation.removed');
    assert.equal(removed.conversation_id, id);
    assert.equal(removed.seq, b.seq + 1);
    // A send over the socket by the removed member is refused.
    c.send({ type: 'send', conversation_id: id, client_id: 'late', text: 'hello?' });
    let f;
    do f = await c.next(); while (f.type !== 'error');
    assert.equal(f.code, 'not_member');
    assert.equal(f.client_id, 'late');
    c.ws.close();
    await c.closed;
    assert.ok((await getConv(x, id)).json.conversation.members.every((m) => m.user.id !== y.user.id));
  });
});
