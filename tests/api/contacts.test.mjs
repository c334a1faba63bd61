// API tests of contacts between users: requests with greetings, accept, decline, mutual requests, removal and blocks.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { expectError, register, startServer } from './lib.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(async () => { await srv?.stop(); });

const ask = (from, to, greeting) => srv.call('POST', '/v1/contacts/requests', {
  token: from.token,
  body: greeting === undefined ? { user_id: to.user.id } : { user_id: to.user.id, greeting },
});
const accept = (who, id) => srv.call('POST', `/v1/contacts/requests/${id}/accept`, { token: who.token });
const decline = (who, id) => srv.call('POST', `/v1/contacts/requests/${id}/decline`, { token: who.token });
const pending = async (who) => (await srv.call('GET', '/v1/contacts/requests', { token: who.token })).json;
const contactIds = async (who) => {
  const res = await srv.call('GET', '/v1/contacts', { token: who.token });
  assert.equal(res.status, 200);
  return res.json.contacts.map((c) => c.user.id);
};

describe('contact requests', () => {
  test('ask, see it on both sides, accept: both are contacts', async () => {
    const ann = await register(srv);
    const ben = await register(srv);
    const res = await ask(ann, ben, 'Hi Ben, it is Ann from the climbing club 🧗');
    assert.equal(res.status, 201);
    const r = res.json.request;
    assert.match(r.id, /^[0-9]+$/);
    assert.deepEqual(r.from, ann.user);
    assert.deepEqual(r.to, ben.user);
    assert.equal(r.greeting, 'Hi Ben, it is Ann from the climbing club 🧗');
    assert.equal(r.status, 'pending');
    assert.ok(!Number.isNaN(Date.parse(r.created_at)));

    // Asking again gives back the same request, not a second one.
    const again = await ask(ann, ben, 'hello??');
    assert.equal(again.status, 200);
    assert.equal(again.json.request.id, r.id);
    assert.equal(again.json.request.greeting, r.greeting);

    const benSees = await pending(ben);
    assert.deepEqual(benSees.incoming.map((x) => x.id), [r.id]);
    assert.deepEqual(benSees.outgoing, []);
    const annSees = await pending(ann);
    assert.deepEqual(annSees.outgoing.map((x) => x.id), [r.id]);
    assert.deepEqual(annSees.incoming, []);
    assert.deepEqual(await contactIds(ann), []);

    // Only Ben may answer: for anyone else the request does not exist.
    const cat = await register(srv);
    expectError(assert, await accept(ann, r.id), 404, 'not_found');
    expectError(assert, await accept(cat, r.id), 404, 'not_found');
    expectError(assert, await decline(cat, r.id), 404, 'not_found');

    const ok = await accept(ben, r.id);
    assert.equal(ok.status, 200);
    assert.equal(ok.json.request.id, r.id);
    assert.equal(ok.json.request.status, 'accepted');
    assert.deepEqual(await contactIds(ann), [ben.user.id]);
    assert.deepEqual(await contactIds(ben), [ann.user.id]);
    const list = await srv.call('GET', '/v1/contacts', { token: ann.token });
    assert.deepEqual(list.json.contacts[0].user, ben.user);
    assert.ok(!Number.isNaN(Date.parse(list.json.contacts[0].since)));
    assert.deepEqual((await pending(ben)).incoming, []);

    // Accepting twice is harmless; asking a contact is a conflict.
    assert.equal((await accept(ben, r.id)).status, 200);
    expectError(assert, await ask(ben, ann), 409, 'already_contacts');
    expectError(assert, await ask(ann, ben), 409, 'already_contacts');
    expectError(assert, await decline(ben, r.id), 409, 'request_not_pending');
  });

  test('decline: no contact, and a declined request cannot be accepted', async () => {
    const dan = await register(srv);
    const eve = await register(srv);
    const r = (await ask(dan, eve, '')).json.request;
    const res = await decline(eve, r.id);
    assert.equal(res.status, 200);
    assert.equal(res.json.request.status, 'declined');
    expectError(assert, await accept(eve, r.id), 409, 'request_not_pending');
    assert.deepEqual(await contactIds(eve), []);
    assert.deepEqual((await pending(dan)).outgoing, []);
    // Dan may ask again later: a new request.
    const again = await ask(dan, eve, 'second try');
    assert.equal(again.status, 201);
    assert.notEqual(again.json.request.id, r.id);
  });

  test('asking someone who already asked me makes us contacts', async () => {
    const fay = await register(srv);
    const gus = await register(srv);
    const theirs = (await ask(fay, gus, 'hey')).json.request;
    const res = await ask(gus, fay, 'oh hi');
    assert.equal(res.status, 200);
    assert.equal(res.json.request.id, theirs.id);
    assert.equal(res.json.request.status, 'accepted');
    assert.deepEqual(await contactIds(fay), [gus.user.id]);
    assert.deepEqual(await contactIds(gus), [fay.user.id]);
    assert.deepEqual(await pending(fay), { incoming: [], outgoing: [] });
  });

  test('bad requests: myself, unknown user, bad ids, long greeting', async () => {
    const hal = await register(srv);
    const ivy = await register(srv);
    expectError(assert, await ask(hal, hal), 400, 'invalid_request');
    expectError(assert, await srv.call('POST', '/v1/contacts/requests', { token: hal.token, body: { user_id: '1' } }),
      404, 'not_found');
    for (const user_id of [Number(ivy.user.id), 'abc', '', null, ['1']]) {
      const res = await srv.call('POST', '/v1/contacts/requests', { token: hal.token, body: { user_id } });
      expectError(assert, res, 400, 'invalid_request');
      assert.match(res.json.error.message, /user_id/);
    }
    expectError(assert, await srv.call('POST', '/v1/contacts/requests', { token: hal.token, body: {} }), 400,
      'invalid_request');
    expectError(assert, await ask(hal, ivy, 'g'.repeat(141)), 400, 'invalid_request');
    expectError(assert, await ask(hal, ivy, 'line\nbreak'), 400, 'invalid_request');
    expectError(assert, await ask(hal, ivy, 5), 400, 'invalid_request');
    expectError(assert, await accept(hal, 'xyz'), 400, 'invalid_request');
    expectError(assert, await srv.call('POST', '/v1/contacts/requests', { body: { user_id: ivy.user.id } }), 401,
      'unauthorized');
    assert.deepEqual(await pending(ivy), { incoming: [], outgoing: [] }, 'nothing was created');
    assert.equal((await ask(hal, ivy, '王'.repeat(140))).status, 201);
  });
});

describe('contacts and blocks', () => {
  const befriend = async (a, b) => {
    const r = (await ask(a, b, 'hi')).json.request;
    assert.equal((await accept(b, r.id)).status, 200);
  };

  test('removing a contact removes it on both sides', async () => {
    const jo = await register(srv);
    const kim = await register(srv);
    await befriend(jo, kim);
    const res = await srv.call('DELETE', `/v1/contacts/${kim.user.id}`, { token: jo.token });
    assert.equal(res.status, 204);
    assert.deepEqual(await contactIds(jo), []);
    assert.deepEqual(await contactIds(kim), []);
    expectError(assert, await srv.call('DELETE', `/v1/contacts/${kim.user.id}`, { token: jo.token }), 404, 'not_found');
    expectError(assert, await srv.call('DELETE', '/v1/contacts/nope', { token: jo.token }), 400, 'invalid_request');
    // They can become contacts again.
    await befriend(kim, jo);
    assert.deepEqual(await contactIds(jo), [kim.user.id]);
  });

  test('blocking removes the contact and pending requests, and stops requests', async () => {
    const lea = await register(srv);
    const max = await register(srv);
    const ned = await register(srv);
    await befriend(lea, max);
    await ask(ned, lea, 'pending one');
    const unrelated = (await ask(lea, await register(srv), 'unrelated')).json.request; // stays
    let res = await srv.call('POST', '/v1/blocks', { token: lea.token, body: { user_id: max.user.id } });
    assert.equal(res.status, 201);
    assert.deepEqual(res.json.block.user, max.user);
    assert.ok(!Number.isNaN(Date.parse(res.json.block.since)));
    res = await srv.call('POST', '/v1/blocks', { token: lea.token, body: { user_id: ned.user.id } });
    assert.equal(res.status, 201);
    // Blocking again is not an error and keeps the first time.
    const twice = await srv.call('POST', '/v1/blocks', { token: lea.token, body: { user_id: ned.user.id } });
    assert.equal(twice.status, 200);
    assert.equal(twice.json.block.since, res.json.block.since);

    assert.deepEqual(await contactIds(lea), []);
    assert.deepEqual(await contactIds(max), []);
    const leaPending = await pending(lea);
    assert.deepEqual(leaPending.incoming, []);
    assert.deepEqual(leaPending.outgoing.map((r) => r.id), [unrelated.id]);
    assert.deepEqual((await pending(ned)).outgoing, []);

    expectError(assert, await ask(max, lea, 'please'), 403, 'blocked');
    expectError(assert, await ask(ned, lea), 403, 'blocked');
    expectError(assert, await ask(lea, max), 409, 'user_blocked');

    const blocks = await srv.call('GET', '/v1/blocks', { token: lea.token });
    assert.equal(blocks.status, 200);
    assert.deepEqual(blocks.json.blocks.map((b) => b.user.id).sort(), [max.user.id, ned.user.id].sort());
    // Max does not see who blocked him.
    assert.deepEqual((await srv.call('GET', '/v1/blocks', { token: max.token })).json.blocks, []);

    assert.equal((await srv.call('DELETE', `/v1/blocks/${max.user.id}`, { token: lea.token })).status, 204);
    expectError(assert, await srv.call('DELETE', `/v1/blocks/${max.user.id}`, { token: lea.token }), 404, 'not_found');
    assert.equal((await ask(max, lea, 'friends again?')).status, 201);
    assert.deepEqual(
      (await srv.call('GET', '/v1/blocks', { token: lea.token })).json.blocks.map((b) => b.user.id), [ned.user.id]);
  });

  test('block input errors', async () => {
    const oz = await register(srv);
    expectError(assert, await srv.call('POST', '/v1/blocks', { token: oz.token, body: { user_id: oz.user.id } }), 400,
      'invalid_request');
    expectError(assert, await srv.call('POST', '/v1/blocks', { token: oz.token, body: { user_id: '1' } }), 404,
      'not_found');
    expectError(assert, await srv.call('POST', '/v1/blocks', { token: oz.token, body: { user_id: 12 } }), 400,
      'invalid_request');
    expectError(assert, await srv.call('POST', '/v1/blocks', { token: oz.token, raw: '{' }), 400, 'malformed_json');
    expectError(assert, await srv.call('GET', '/v1/blocks'), 401, 'unauthorized');
  });
});
