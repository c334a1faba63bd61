// API tests of attachments: uploads of each allowed type, type checks from the bytes, limits, thumbnails, who may download, image and file messages, durability.
import assert from 'node:assert/strict';
import net from 'node:net';
import zlib from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expectError, openWs, register, startServer } from './lib.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(async () => { await srv?.stop(); });

// ---- files, made here ----

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A PNG chunk: length, type, data and CRC. */
function pngChunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/**
 * A w x h RGB PNG with a gradient (so that it does not compress to nothing);
 * with `alpha`, RGBA and half transparent; `chunks` go after IHDR.
 */
function png(w, h, { alpha = false, chunks = [] } = {}) {
  const px = alpha ? 4 : 3;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = alpha ? 6 : 2; // RGBA or RGB
  const raw = Buffer.alloc(h * (1 + w * px));
  for (let y = 0; y < h; y++) {
    const row = y * (1 + w * px);
    for (let x = 0; x < w; x++) {
      raw[row + 1 + x * px] = (x * 7) & 0xff;
      raw[row + 2 + x * px] = (y * 5) & 0xff;
      raw[row + 3 + x * px] = ((x ^ y) * 3) & 0xff;
      if (alpha) raw[row + 4 + x * px] = 128;
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr), ...chunks, pngChunk('IDAT', zlib.deflateSync(raw)), pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A zip holding one stored file. */
function zip(name, content) {
  const n = Buffer.from(name);
  const data = Buffer.from(content);
  const crc = crc32(data);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(10, 4);
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(data.length, 18);
  local.writeUInt32LE(data.length, 22);
  local.writeUInt16LE(n.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4);
  central.writeUInt16LE(10, 6);
  central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(data.length, 20);
  central.writeUInt32LE(data.length, 24);
  central.writeUInt16LE(n.length, 28);
  const cdOffset = local.length + n.length + data.length;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(central.length + n.length, 12);
  end.writeUInt32LE(cdOffset, 16);
  return Buffer.concat([local, n, data, central, n, end]);
}

// An 8x8 baseline JPEG, a 1x1 GIF and a 1x1 lossless WebP, as encoders write them.
const JPEG = Buffer.from('/9j/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2P/wAARCAAIAAgDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDpKKKKAP/Z', 'base64');
const GIF = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
const WEBP = Buffer.from('UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==', 'base64');
const PDF = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n'
  + '2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');
const TEXT = Buffer.from('Shopping list\n- caf\u00e9 beans\n- \u7c73 (rice)\n');
// The start of an x86-64 ELF executable.
const ELF = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), Buffer.alloc(8),
  Buffer.from([2, 0, 0x3e, 0, 1, 0, 0, 0]), Buffer.alloc(40)]);

// A 16x8 baseline JPEG (wider than tall, to see a rotation), as libvips writes it.
const JPEG_16X8 = Buffer.from('/9j/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2P/wAARCAAIABADASIAAhEBAxEB/8QAFgABAQEAAAAAAAAAAAAAAAAAAAUG/8QAFxAAAwEAAAAAAAAAAAAAAAAAAAQhMf/EABQBAQAAAAAAAAAAAAAAAAAAAAP/xAAYEQADAQEAAAAAAAAAAAAAAAAAAgQBA//aAAwDAQACEQMRAD8Ayi6mQqLqZABZ30aXox//2Q==', 'base64');

/**
 * The TIFF inside a phone's EXIF, big-endian: IFD0 with Make "SecretCam",
 * Orientation and a GPS IFD with latitude 48 51' 24.23" N.
 */
function cameraTiff(orientation) {
  const t = Buffer.alloc(114);
  t.write('MM\0\x2a', 0, 'latin1');
  t.writeUInt32BE(8, 4);
  t.writeUInt16BE(3, 8);
  const entry = (at, tag, type, count, value) => {
    t.writeUInt16BE(tag, at);
    t.writeUInt16BE(type, at + 2);
    t.writeUInt32BE(count, at + 4);
    if (type === 3) t.writeUInt16BE(value, at + 8); else t.writeUInt32BE(value, at + 8);
  };
  entry(10, 0x010f, 2, 10, 50); // Make
  entry(22, 0x0112, 3, 1, orientation);
  entry(34, 0x8825, 4, 1, 60); // GPSInfo
  t.write('SecretCam\0', 50, 'latin1');
  t.writeUInt16BE(2, 60);
  entry(62, 0x0001, 2, 2, 0x4e000000); // GPSLatitudeRef "N"
  entry(74, 0x0002, 5, 3, 90); // GPSLatitude
  [48, 1, 51, 1, 2423, 100].forEach((v, i) => t.writeUInt32BE(v, 90 + 4 * i));
  return t;
}

function jpegSegment(marker, payload) {
  const head = Buffer.from([0xff, marker, 0, 0]);
  head.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([head, payload]);
}

/** jpeg with what a phone writes after its SOI: EXIF (with GPS), XMP and a comment. */
function phonePhoto(jpeg, orientation) {
  return Buffer.concat([
    jpeg.subarray(0, 2),
    jpegSegment(0xe1, Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), cameraTiff(orientation)])),
    jpegSegment(0xe1, Buffer.from('http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><exif:GPSLatitude>48,51.40N</exif:GPSLatitude></x:xmpmeta>', 'latin1')),
    jpegSegment(0xfe, Buffer.from('taken at home')),
    jpeg.subarray(2),
  ]);
}

/** The segments of a JPEG up to its first scan: marker and payload. */
function jpegSegments(buf) {
  const segs = [];
  let i = 2;
  while (i + 4 <= buf.length && buf[i] === 0xff) {
    const marker = buf[i + 1];
    const len = buf.readUInt16BE(i + 2);
    segs.push({ marker, at: i, payload: buf.subarray(i + 4, i + 2 + len) });
    if (marker === 0xda) break;
    i += 2 + len;
  }
  return segs;
}

/** The tags of IFD0 of an EXIF payload ("Exif\0\0" and a TIFF): tag -> first value. */
function exifTags(payload) {
  const t = payload.subarray(6);
  const le = t.toString('latin1', 0, 2) === 'II';
  const u16 = (o) => (le ? t.readUInt16LE(o) : t.readUInt16BE(o));
  const u32 = (o) => (le ? t.readUInt32LE(o) : t.readUInt32BE(o));
  const ifd = u32(4);
  const tags = new Map();
  for (let k = 0; k < u16(ifd); k++) {
    const e = ifd + 2 + 12 * k;
    tags.set(u16(e), u16(e + 2) === 3 ? u16(e + 8) : u32(e + 8));
  }
  return tags;
}

/** Width and height from a JPEG's start-of-frame marker. */
function jpegSize(buf) {
  let i = 2;
  while (i + 9 < buf.length) {
    if (buf[i] !== 0xff) return null;
    const marker = buf[i + 1];
    const len = buf.readUInt16BE(i + 2);
    if (marker >= 0xc0 && marker <= 0xc2) return { height: buf.readUInt16BE(i + 5), width: buf.readUInt16BE(i + 7) };
    i += 2 + len;
  }
  return null;
}

// ---- calls ----

const uploadRaw = (who, bytes, type, name) => srv.call('POST', `/v1/uploads${name ? `?name=${encodeURIComponent(name)}` : ''}`, {
  token: who?.token, raw: bytes, headers: type ? { 'content-type': type } : {},
});
async function upload(who, bytes, type, name) {
  const res = await uploadRaw(who, bytes, type, name);
  assert.equal(res.status, 201, res.text);
  return res.json.upload;
}
async function download(who, p, headers = {}) {
  const h = { ...headers };
  if (who) h.authorization = `Bearer ${who.token}`;
  const res = await fetch(srv.url(p), { headers: h });
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
}

async function befriend(a, b) {
  const r = await srv.call('POST', '/v1/contacts/requests', { token: a.token, body: { user_id: b.user.id } });
  assert.equal(r.status, 201, r.text);
  const ok = await srv.call('POST', `/v1/contacts/requests/${r.json.request.id}/accept`, { token: b.token });
  assert.equal(ok.status, 200, ok.text);
}

/** Two contacts with their direct chat, and a third user outside it. */
async function trio() {
  const a = await register(srv);
  const b = await register(srv);
  const c = await register(srv);
  await befriend(a, b);
  const res = await srv.call('POST', '/v1/conversations', { token: a.token, body: { type: 'direct', user_id: b.user.id } });
  assert.equal(res.status, 201, res.text);
  return { a, b, c, conv: res.json.conversation };
}

const send = (who, convId, body, clientId) => srv.call('POST', `/v1/conversations/${convId}/messages`, {
  token: who.token, body: { client_id: clientId, body },
});

/**
 * Sends only the headers of a request whose Content-Length is `length` on a
 * raw socket and returns the status line's code: a refusal on the declared
 * length must not need the body.
 */
function statusForDeclaredLength(p, length, token) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(srv.port, '127.0.0.1');
    let data = '';
    sock.on('data', (d) => { data += d; });
    sock.on('error', reject);
    sock.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      if (m) resolve(Number(m[1])); else reject(new Error(`no answer: ${JSON.stringify(data)}`));
    });
    sock.write(`POST ${p} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n`
      + `Content-Type: text/plain\r\nContent-Length: ${length}\r\n\r\n`);
  });
}

// ---- tests ----

describe('uploading', () => {
  test('each allowed type is stored with its detected type, size and name, and served back byte for byte', async () => {
    const me = await register(srv);
    const cases = [
      { bytes: png(800, 600), type: 'image/png', name: 'sunset.png', width: 800, height: 600, image: true },
      { bytes: JPEG, type: 'image/jpeg', name: 'photo.jpg', width: 8, height: 8, image: true },
      { bytes: GIF, type: 'image/gif', name: 'dot.gif', width: 1, height: 1, image: true },
      { bytes: WEBP, type: 'image/webp', name: 'dot.webp', width: 1, height: 1, image: true },
      { bytes: PDF, type: 'application/pdf', name: '\u62a5\u544a "final".pdf' },
      { bytes: zip('a.txt', 'hello zip'), type: 'application/zip', name: 'archive.zip' },
      { bytes: TEXT, type: 'text/plain; charset=utf-8', name: 'list.txt', served: 'text/plain; charset=utf-8' },
    ];
    for (const c of cases) {
      const u = await upload(me, c.bytes, c.type, c.name);
      assert.match(u.id, /^\d+$/);
      assert.equal(u.content_type, c.type.split(';')[0]);
      assert.equal(u.size, c.bytes.length);
      assert.equal(u.name, c.name);
      assert.equal(u.width, c.image ? c.width : null);
      assert.equal(u.height, c.image ? c.height : null);
      assert.equal(u.has_thumbnail, Boolean(c.image));

      const got = await download(me, `/v1/uploads/${u.id}`);
      assert.equal(got.status, 200);
      assert.ok(got.bytes.equals(c.bytes), `${c.type}: the bytes differ`);
      assert.equal(got.headers.get('content-type'), c.served ?? c.type);
      assert.equal(got.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(got.headers.get('cache-control'), 'private, max-age=86400');
      assert.ok(got.headers.get('etag'));
      const disp = got.headers.get('content-disposition');
      assert.ok(disp.startsWith(c.image ? 'inline;' : 'attachment;'), disp);
      assert.ok(disp.includes(`filename*=UTF-8''${encodeURIComponent(c.name).replace(/'/g, '%27')}`), disp);
      // The plain filename never carries a quote that would end it early.
      assert.ok(!/filename="[^"]*"[^;]/.test(disp), disp);
    }
  });

  test('without a name the upload is named by its id; a bad name is refused', async () => {
    const me = await register(srv);
    const u = await upload(me, PDF, 'application/pdf');
    assert.equal(u.name, `${u.id}.pdf`);
    expectError(assert, await uploadRaw(me, PDF, 'application/pdf', '../../etc/passwd'), 400, 'invalid_request');
    expectError(assert, await uploadRaw(me, PDF, 'application/pdf', 'a\u202egpj.exe'), 400, 'invalid_request');
    expectError(assert, await uploadRaw(me, PDF, 'application/pdf', 'x'.repeat(256)), 400, 'invalid_request');
  });

  test('the type comes from the bytes: a PNG declared as a PDF, an executable and HTML get 415', async () => {
    const me = await register(srv);
    const r1 = await uploadRaw(me, png(4, 4), 'application/pdf', 'doc.pdf');
    expectError(assert, r1, 415, 'unsupported_media_type');
    assert.match(r1.json.error.message, /image\/png/);
    expectError(assert, await uploadRaw(me, ELF, 'application/octet-stream', 'setup.exe'), 415, 'unsupported_media_type');
    expectError(assert, await uploadRaw(me, ELF, 'application/zip', 'setup.zip'), 415, 'unsupported_media_type');
    expectError(assert, await uploadRaw(me, ELF, 'application/pdf', 'setup.pdf'), 415, 'unsupported_media_type');
    const html = Buffer.from('<!DOCTYPE html><html><script>alert(document.cookie)</script></html>\n');
    expectError(assert, await uploadRaw(me, html, 'text/plain', 'page.txt'), 415, 'unsupported_media_type');
    expectError(assert, await uploadRaw(me, Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'), 'image/svg+xml'), 415, 'unsupported_media_type');
    // A PNG signature over garbage is not an image anyone can view.
    const broken = Buffer.concat([png(64, 64).subarray(0, 40), Buffer.alloc(200, 7)]);
    expectError(assert, await uploadRaw(me, broken, 'image/png'), 415, 'unsupported_media_type');
    expectError(assert, await uploadRaw(me, PDF, undefined), 415, 'unsupported_media_type');
    expectError(assert, await uploadRaw(me, Buffer.alloc(0), 'text/plain'), 400, 'invalid_request');
  });

  test('up to 10 MiB is accepted; one byte more is 413; other routes keep the 1 MiB limit', { timeout: 60000 }, async () => {
    const me = await register(srv);
    const big = Buffer.alloc(10 * 1024 * 1024, 'a');
    const u = await upload(me, big, 'text/plain', 'big.txt');
    assert.equal(u.size, big.length);
    const got = await download(me, `/v1/uploads/${u.id}`);
    assert.ok(got.bytes.equals(big));
    assert.equal(await statusForDeclaredLength('/v1/uploads', 10 * 1024 * 1024 + 1, me.token), 413);
    assert.equal(await statusForDeclaredLength('/v1/conversations', 1024 * 1024 + 1, me.token), 413);
  });

  test('an upload needs a signed-in user', async () => {
    expectError(assert, await uploadRaw(null, PDF, 'application/pdf'), 401, 'unauthorized');
    const me = await register(srv);
    const u = await upload(me, PDF, 'application/pdf');
    assert.equal((await download(null, `/v1/uploads/${u.id}`)).status, 401);
  });
});

describe('thumbnails', () => {
  test('an image gets a thumbnail that fits 320 px and is smaller; a file has none', async () => {
    const me = await register(srv);
    const original = png(1200, 900);
    const u = await upload(me, original, 'image/png', 'big.png');
    const t = await download(me, `/v1/uploads/${u.id}/thumbnail`);
    assert.equal(t.status, 200);
    assert.equal(t.headers.get('content-type'), 'image/jpeg');
    assert.equal(t.headers.get('x-content-type-options'), 'nosniff');
    assert.ok(t.bytes.length < original.length, `thumbnail ${t.bytes.length} bytes, original ${original.length}`);
    assert.deepEqual(jpegSize(t.bytes), { width: 320, height: 240 });
    assert.notEqual(t.headers.get('etag'), (await download(me, `/v1/uploads/${u.id}`)).headers.get('etag'));

    const f = await upload(me, PDF, 'application/pdf');
    const none = await download(me, `/v1/uploads/${f.id}/thumbnail`);
    assert.equal(none.status, 404);
  });

  test('a client with the ETag gets 304 and no body; HEAD gets the headers only', async () => {
    const me = await register(srv);
    const u = await upload(me, JPEG, 'image/jpeg');
    const first = await download(me, `/v1/uploads/${u.id}`);
    const again = await download(me, `/v1/uploads/${u.id}`, { 'if-none-match': first.headers.get('etag') });
    assert.equal(again.status, 304);
    assert.equal(again.bytes.length, 0);
    const head = await fetch(srv.url(`/v1/uploads/${u.id}`), { method: 'HEAD', headers: { authorization: `Bearer ${me.token}` } });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(JPEG.length));
    assert.equal(head.headers.get('etag'), first.headers.get('etag'));
    assert.equal((await head.arrayBuffer()).byteLength, 0);
  });
});

describe('metadata', () => {
  test('a photo reaches the other members without its GPS position, camera, XMP or comment, pixels untouched', async () => {
    const { a, b, conv } = await trio();
    const photo = phonePhoto(JPEG, 1);
    const u = await upload(a, photo, 'image/jpeg', 'holiday.jpg');
    assert.equal(u.width, 8);
    assert.equal(u.height, 8);
    const res = await send(a, conv.id, { type: 'image', upload_id: u.id }, 'photo-1');
    assert.equal(res.status, 201, res.text);

    const got = await download(b, `/v1/uploads/${u.id}`);
    assert.equal(got.status, 200);
    assert.equal(got.headers.get('content-type'), 'image/jpeg');
    for (const secret of ['Exif\0\0', 'SecretCam', 'GPSLatitude', 'ns.adobe.com/xap', 'taken at home'])
      assert.ok(!got.bytes.includes(Buffer.from(secret, 'latin1')), `the download holds ${JSON.stringify(secret)}`);
    assert.deepEqual(jpegSegments(got.bytes).filter((seg) => seg.marker === 0xe1 || seg.marker === 0xfe), []);
    // What is left is the uploaded JPEG itself, byte for byte: nothing was re-encoded.
    assert.ok(got.bytes.equals(JPEG));
    assert.deepEqual(jpegSize(got.bytes), { width: 8, height: 8 });
    // The size is the stored one, the one a download serves.
    assert.equal(u.size, JPEG.length);
    assert.equal(Number(got.headers.get('content-length')), JPEG.length);
    assert.equal(res.json.message.body.upload.size, JPEG.length);
    const thumb = await download(b, `/v1/uploads/${u.id}/thumbnail`);
    assert.equal(thumb.status, 200);
    assert.ok(!thumb.bytes.includes(Buffer.from('SecretCam')));
  });

  test('a photo taken upright keeps its orientation 6, alone, and is measured as shown', async () => {
    const { a, b, conv } = await trio();
    const u = await upload(a, phonePhoto(JPEG_16X8, 6), 'image/jpeg', 'portrait.jpg');
    // Stored 16 wide and 8 high, shown turned: 8 x 16.
    assert.equal(u.width, 8);
    assert.equal(u.height, 16);
    assert.equal((await send(a, conv.id, { type: 'image', upload_id: u.id }, 'photo-6')).status, 201);

    const got = await download(b, `/v1/uploads/${u.id}`);
    assert.equal(got.status, 200);
    assert.equal(u.size, got.bytes.length);
    assert.deepEqual(jpegSize(got.bytes), { width: 16, height: 8 });
    const app1 = jpegSegments(got.bytes).filter((seg) => seg.marker === 0xe1);
    assert.equal(app1.length, 1);
    assert.equal(app1[0].payload.toString('latin1', 0, 6), 'Exif\0\0');
    assert.deepEqual([...exifTags(app1[0].payload)], [[0x0112, 6]]);
    assert.ok(!got.bytes.includes(Buffer.from('SecretCam')) && !got.bytes.includes(Buffer.from('GPSLatitude')));
    // From the first scan on, the bytes are the original's.
    const scan = (buf) => buf.subarray(jpegSegments(buf).at(-1).at);
    assert.ok(scan(got.bytes).equals(scan(JPEG_16X8)));
  });

  test('a PNG loses its EXIF and text chunks, and its transparent thumbnail has none either', async () => {
    const me = await register(srv);
    const chunks = [
      pngChunk('eXIf', cameraTiff(1)),
      pngChunk('tEXt', Buffer.from('Comment\0taken at home', 'latin1')),
      pngChunk('iTXt', Buffer.from('XML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta>GPSLatitude</x:xmpmeta>', 'latin1')),
    ];
    const clean = png(64, 48, { alpha: true });
    const u = await upload(me, png(64, 48, { alpha: true, chunks }), 'image/png');
    assert.equal(u.size, clean.length);
    const got = await download(me, `/v1/uploads/${u.id}`);
    assert.ok(got.bytes.equals(clean));
    const thumb = await download(me, `/v1/uploads/${u.id}/thumbnail`);
    assert.equal(thumb.headers.get('content-type'), 'image/webp');
    assert.ok(!thumb.bytes.includes(Buffer.from('SecretCam')));
    assert.ok(!thumb.bytes.includes(Buffer.from('EXIF')));
  });
  test('a GIF loses its comment and XMP blocks and keeps its loop count', async () => {
    const me = await register(srv);
    // GIF: header, screen descriptor and a two-colour table (13 + 6 bytes), then blocks.
    const head = GIF.subarray(0, 19);
    const loop = Buffer.from('21ff0b4e45545343415045322e300301000000', 'hex'); // NETSCAPE2.0, loop forever
    const comment = Buffer.concat([Buffer.from([0x21, 0xfe, 20]), Buffer.from('taken at home, Paris'), Buffer.from([0])]);
    const xmp = Buffer.concat([
      Buffer.from('\x21\xff\x0bXMP DataXMP<x:xmpmeta>GPSLatitude 48,51.40N</x:xmpmeta>', 'latin1'),
      Buffer.from([1, ...Array.from({ length: 256 }, (_, i) => 255 - i), 0]),
    ]);
    const clean = Buffer.concat([head, loop, GIF.subarray(19)]);
    const u = await upload(me, Buffer.concat([head, loop, comment, xmp, GIF.subarray(19)]), 'image/gif');
    assert.equal(u.size, clean.length);
    const got = await download(me, `/v1/uploads/${u.id}`);
    assert.ok(got.bytes.equals(clean), got.bytes.toString('hex'));
  });
});

describe('image and file messages', () => {
  test('an image message carries the upload, its URLs and caption, in history and sync; members can download it', async () => {
    const { a, b, c, conv } = await trio();
    const img = png(640, 480);
    const u = await upload(a, img, 'image/png', 'cat.png');
    // Before it is sent, only the uploader may read it; ids reveal nothing.
    assert.equal((await download(b, `/v1/uploads/${u.id}`)).status, 404);

    const res = await send(a, conv.id, { type: 'image', upload_id: u.id, caption: 'Our cat \ud83d\udc31' }, 'img-1');
    assert.equal(res.status, 201, res.text);
    const m = res.json.message;
    assert.equal(m.type, 'image');
    assert.equal(m.text, null);
    assert.deepEqual(m.body, {
      type: 'image',
      upload: { ...u },
      url: `/v1/uploads/${u.id}`,
      thumbnail_url: `/v1/uploads/${u.id}/thumbnail`,
      caption: 'Our cat \ud83d\udc31',
    });

    const again = await send(a, conv.id, { type: 'image', upload_id: u.id, caption: 'Our cat \ud83d\udc31' }, 'img-1');
    assert.equal(again.status, 200);
    assert.deepEqual(again.json.message, m);

    const hist = await srv.call('GET', `/v1/conversations/${conv.id}/messages`, { token: b.token });
    assert.deepEqual(hist.json.messages[0], m);
    const events = (await srv.call('GET', '/v1/sync?since=0', { token: b.token })).json.events;
    const ev = events.filter((e) => e.type === 'message.new');
    assert.equal(ev.length, 1);
    assert.deepEqual(ev[0].message, m);
    const list = (await srv.call('GET', '/v1/conversations', { token: b.token })).json.conversations;
    assert.deepEqual(list[0].last_message, m);

    const got = await download(b, m.body.url);
    assert.equal(got.status, 200);
    assert.ok(got.bytes.equals(img));
    assert.equal((await download(b, m.body.thumbnail_url)).status, 200);

    // Someone outside the chat sees nothing, as for an id that does not exist.
    const outside = await srv.call('GET', m.body.url, { token: c.token });
    expectError(assert, outside, 404, 'not_found');
    expectError(assert, await srv.call('GET', m.body.thumbnail_url, { token: c.token }), 404, 'not_found');
    expectError(assert, await srv.call('GET', '/v1/uploads/123456789', { token: c.token }), 404, 'not_found');
    assert.equal(outside.json.error.message, (await srv.call('GET', '/v1/uploads/123456789', { token: c.token })).json.error.message);
  });

  test('a file message; a member may forward what they received, an outsider may not send it', async () => {
    const { a, b, c, conv } = await trio();
    const u = await upload(a, PDF, 'application/pdf', 'minutes.pdf');
    const res = await send(a, conv.id, { type: 'file', upload_id: u.id }, 'file-1');
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json.message.type, 'file');
    assert.deepEqual(res.json.message.body, {
      type: 'file', upload: u, url: `/v1/uploads/${u.id}`, thumbnail_url: null, caption: null,
    });
    const got = await download(b, `/v1/uploads/${u.id}`);
    assert.ok(got.bytes.equals(PDF));
    assert.match(got.headers.get('content-disposition'), /^attachment; filename="minutes.pdf"/);

    // b forwards it to a new chat with c, who can then read it.
    await befriend(b, c);
    const bc = (await srv.call('POST', '/v1/conversations', { token: b.token, body: { type: 'direct', user_id: c.user.id } })).json.conversation;
    assert.equal((await download(c, `/v1/uploads/${u.id}`)).status, 404);
    assert.equal((await send(b, bc.id, { type: 'file', upload_id: u.id }, 'fwd-1')).status, 201);
    assert.equal((await download(c, `/v1/uploads/${u.id}`)).status, 200);

    // An upload one cannot read cannot be sent either.
    const d = await register(srv);
    const secret = await upload(d, PDF, 'application/pdf');
    expectError(assert, await send(a, conv.id, { type: 'file', upload_id: secret.id }, 'steal'), 400, 'invalid_request');
  });

  test('a recalled image is no longer downloadable by the other members; the uploader keeps it', async () => {
    const { a, b, conv } = await trio();
    const u = await upload(a, JPEG, 'image/jpeg');
    const res = await send(a, conv.id, { type: 'image', upload_id: u.id }, 'oops');
    assert.equal(res.status, 201, res.text);
    assert.equal((await download(b, `/v1/uploads/${u.id}`)).status, 200);
    const recall = await srv.call('POST', `/v1/conversations/${conv.id}/messages/${res.json.message.id}/recall`, { token: a.token });
    assert.equal(recall.status, 200, recall.text);
    assert.equal((await download(b, `/v1/uploads/${u.id}`)).status, 404);
    assert.equal((await download(b, `/v1/uploads/${u.id}/thumbnail`)).status, 404);
    assert.equal((await download(a, `/v1/uploads/${u.id}`)).status, 200);
  });

  test('bad bodies are refused and store nothing', async () => {
    const { a, b, conv } = await trio();
    const pdf = await upload(a, PDF, 'application/pdf');
    const img = await upload(a, GIF, 'image/gif');
    expectError(assert, await send(a, conv.id, { type: 'image', upload_id: pdf.id }, 'x1'), 400, 'invalid_request');
    expectError(assert, await send(a, conv.id, { type: 'video', upload_id: img.id }, 'x2'), 400, 'invalid_request');
    expectError(assert, await send(a, conv.id, { type: 'image' }, 'x3'), 400, 'invalid_request');
    expectError(assert, await send(a, conv.id, { type: 'image', upload_id: img.id, caption: '' }, 'x4'), 400, 'invalid_request');
    expectError(assert, await send(a, conv.id, { type: 'image', upload_id: img.id, caption: 'x'.repeat(1025) }, 'x5'), 400, 'invalid_request');
    expectError(assert, await send(a, conv.id, 'image', 'x6'), 400, 'invalid_request');
    const both = await srv.call('POST', `/v1/conversations/${conv.id}/messages`, {
      token: a.token, body: { client_id: 'x7', text: 'hi', body: { type: 'image', upload_id: img.id } },
    });
    expectError(assert, both, 400, 'invalid_request');
    const hist = await srv.call('GET', `/v1/conversations/${conv.id}/messages`, { token: b.token });
    assert.deepEqual(hist.json.messages, []);
    // Nothing was shared by the refusals.
    assert.equal((await download(b, `/v1/uploads/${img.id}`)).status, 404);
  });

  test('an image sent over the WebSocket is acknowledged with its body', async () => {
    const { a, conv } = await trio();
    const u = await upload(a, JPEG, 'image/jpeg');
    const ws = openWs(srv);
    await ws.opened;
    ws.send({ type: 'hello', token: a.token, since: 0 });
    const next = async (pred) => { for (;;) { const f = await ws.next(); if (pred(f)) return f; } };
    await next((f) => f.type === 'ready');
    ws.send({ type: 'send', conversation_id: conv.id, client_id: 'ws-img', body: { type: 'image', upload_id: u.id } });
    const ack = await next((f) => f.type === 'ack' || f.type === 'error');
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    assert.equal(ack.message.type, 'image');
    assert.equal(ack.message.body.upload.id, u.id);
    assert.equal(ack.message.body.caption, null);
    ws.ws.close();
  });
});

test('an upload answered 201 survives kill -9', { timeout: 60000 }, async () => {
  const s1 = await startServer();
  let s2;
  try {
    const me = await register(s1);
    const bytes = png(500, 400);
    const res = await s1.call('POST', '/v1/uploads?name=kept.png', { token: me.token, raw: bytes, headers: { 'content-type': 'image/png' } });
    assert.equal(res.status, 201, res.text);
    await s1.kill9();
    s2 = await startServer({ dataDir: s1.dir });
    const h = { authorization: `Bearer ${me.token}` };
    const got = await fetch(s2.url(`/v1/uploads/${res.json.upload.id}`), { headers: h });
    assert.equal(got.status, 200);
    assert.ok(Buffer.from(await got.arrayBuffer()).equals(bytes));
    const thumb = await fetch(s2.url(`/v1/uploads/${res.json.upload.id}/thumbnail`), { headers: h });
    assert.equal(thumb.status, 200);
    assert.deepEqual(jpegSize(Buffer.from(await thumb.arrayBuffer())), { width: 320, height: 256 });
  } finally {
    await s2?.stop();
    await s1.stop();
  }
});

test('files a crash left without an upload are removed at start; uploads and foreign files stay', { timeout: 60000 }, async () => {
  const s1 = await startServer();
  let s2;
  try {
    const me = await register(s1);
    const res = await s1.call('POST', '/v1/uploads?name=kept.png', { token: me.token, raw: png(300, 200), headers: { 'content-type': 'image/png' } });
    assert.equal(res.status, 201, res.text);
    const kept = res.json.upload.id;
    await s1.kill9();

    // What a crash leaves: a file whose row never committed (with its
    // thumbnail), a file whose row was deleted, half-written temporaries.
    // Beside them, a file that is not an upload's and one whose id is
    // newer than the next server's first id (an upload under way there).
    const uploads = path.join(s1.dir, 'uploads');
    const keptFile = filesUnderPaths(uploads).find((f) => path.basename(f) === kept);
    assert.ok(keptFile, 'the upload has a file');
    const here = path.dirname(keptFile);
    const elsewhere = path.join(uploads, '7f', '00');
    mkdirSync(elsewhere, { recursive: true });
    const old = (BigInt(kept) - 5000n).toString();
    const future = (BigInt(kept) + (1n << 50n)).toString();
    const orphans = [
      path.join(here, old), path.join(here, `${old}.thumb`),
      path.join(elsewhere, `${BigInt(old) + 1n}`), path.join(elsewhere, `${BigInt(old) + 2n}.tmp`),
      path.join(elsewhere, `${BigInt(old) + 3n}.thumb.tmp`),
    ];
    const stays = [path.join(elsewhere, 'README'), path.join(elsewhere, `${old}.jpg`), path.join(elsewhere, future)];
    for (const f of [...orphans, ...stays]) writeFileSync(f, 'x');

    s2 = await startServer({ dataDir: s1.dir });
    const deadline = Date.now() + 20000;
    while (!/"upload files without an upload removed","count":5}/.test(s2.logs())) {
      assert.ok(Date.now() < deadline, `no scan result in the log:\n${s2.logs()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const f of orphans) assert.ok(!existsSync(f), `${f} is still there`);
    for (const f of stays) assert.ok(existsSync(f), `${f} was removed`);
    const h = { authorization: `Bearer ${me.token}` };
    assert.equal((await fetch(s2.url(`/v1/uploads/${kept}`), { headers: h })).status, 200);
    assert.equal((await fetch(s2.url(`/v1/uploads/${kept}/thumbnail`), { headers: h })).status, 200);
    const metrics = await (await fetch(s2.url('/metrics'))).text();
    assert.match(metrics, /upload_files_orphaned\S* 5\b/);
  } finally {
    await s2?.stop();
    await s1.stop();
  }
});

/** The paths of the files under dir, at any depth. */
function filesUnderPaths(dir) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile()).map((e) => path.join(e.path ?? e.parentPath, e.name));
}

/** The names of the files under dir, at any depth. */
function filesUnder(dir) {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name);
  } catch {
    return [];
  }
}

test('an upload never sent in a message is deleted with its files after its time; a sent one stays', { timeout: 60000 }, async () => {
  // A week in production; 1.5 s here, so that the sweep can be seen.
  const s = await startServer({ env: { PLAZA_TEST_UPLOAD_TTL_MS: '1500' } });
  try {
    const a = await register(s);
    const b = await register(s);
    const req = await s.call('POST', '/v1/contacts/requests', { token: a.token, body: { user_id: b.user.id } });
    assert.equal((await s.call('POST', `/v1/contacts/requests/${req.json.request.id}/accept`, { token: b.token })).status, 200);
    const conv = (await s.call('POST', '/v1/conversations', { token: a.token, body: { type: 'direct', user_id: b.user.id } })).json.conversation;
    const up = async (name) => {
      const res = await s.call('POST', `/v1/uploads?name=${name}`, { token: a.token, raw: png(300, 200), headers: { 'content-type': 'image/png' } });
      assert.equal(res.status, 201, res.text);
      return res.json.upload;
    };
    const sent = await up('sent.png');
    const unsent = await up('unsent.png');
    const msg = await s.call('POST', `/v1/conversations/${conv.id}/messages`, {
      token: a.token, body: { client_id: 'sweep-1', body: { type: 'image', upload_id: sent.id } },
    });
    assert.equal(msg.status, 201, msg.text);
    const uploads = path.join(s.dir, 'uploads');
    const mine = (u) => filesUnder(uploads).filter((n) => n === String(u.id) || n === `${u.id}.thumb`).sort();
    assert.deepEqual(mine(unsent), [String(unsent.id), `${unsent.id}.thumb`]);

    const h = { authorization: `Bearer ${a.token}` };
    const deadline = Date.now() + 20000;
    while ((await fetch(s.url(`/v1/uploads/${unsent.id}`), { headers: h })).status !== 404) {
      assert.ok(Date.now() < deadline, 'the unsent upload is still there after 20 s');
      await new Promise((r) => setTimeout(r, 200));
    }
    // Its files go once the deletion is durable.
    while (mine(unsent).length) {
      assert.ok(Date.now() < deadline, `files left: ${mine(unsent)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // It can no longer be sent; the one that was sent stays, for both.
    const late = await s.call('POST', `/v1/conversations/${conv.id}/messages`, {
      token: a.token, body: { client_id: 'sweep-2', body: { type: 'image', upload_id: unsent.id } },
    });
    expectError(assert, late, 400, 'invalid_request');
    for (const who of [a, b]) {
      const got = await fetch(s.url(`/v1/uploads/${sent.id}`), { headers: { authorization: `Bearer ${who.token}` } });
      assert.equal(got.status, 200);
    }
    assert.deepEqual(mine(sent), [String(sent.id), `${sent.id}.thumb`]);
    assert.match(s.logs(), /"msg":"swept".*uploads never sent/);
  } finally {
    await s.stop();
  }
});
