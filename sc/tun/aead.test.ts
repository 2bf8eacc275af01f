// The addon's AEAD contexts (aead.c) against node:crypto: the same ciphertext and tag for every
// cipher, nonce and length (so the SC link's bytes did not change when it moved to them),
// verification that refuses any altered bit without touching the caller's bytes, and argument
// checks that throw instead of reading out of bounds.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createCipheriv, randomBytes, type CipherGCMTypes } from "node:crypto";
import { loadAddon, type AeadCipher } from "./addon.js";

const { AeadHandle } = loadAddon();
const CIPHERS: [AeadCipher, number][] = [
  ["aes-128-gcm", 16],
  ["aes-256-gcm", 32],
  ["chacha20-poly1305", 32],
];

/** node:crypto's answer: ciphertext of message[aad..] and the tag. */
function reference(
  cipher: AeadCipher,
  key: Uint8Array,
  nonce: Uint8Array,
  aad: number,
  message: Uint8Array,
  tagLength: number,
): { body: Buffer; tag: Buffer } {
  const c = createCipheriv(cipher as CipherGCMTypes, key, nonce, { authTagLength: tagLength });
  c.setAAD(message.subarray(0, aad), { plaintextLength: message.length - aad });
  const body = Buffer.concat([c.update(message.subarray(aad)), c.final()]);
  return { body, tag: c.getAuthTag() };
}

test("seal gives node:crypto's ciphertext and tag, and open restores the plaintext (every cipher, lengths 0..70000)", () => {
  for (const [cipher, keyLen] of CIPHERS) {
    const key = randomBytes(keyLen);
    const sealer = new AeadHandle(cipher, key, true, 16);
    const opener = new AeadHandle(cipher, key, false, 16);
    for (const [len, aad] of [
      [0, 0],
      [8, 8],
      [9, 8],
      [600, 8],
      [600, 0],
      [16_401, 5],
      [70_000, 8],
    ] as [number, number][]) {
      const plain = randomBytes(len);
      const nonce = randomBytes(12);
      const want = reference(cipher, key, nonce, aad, plain, 16);
      const message = Uint8Array.from(plain);
      const tag = new Uint8Array(16);
      sealer.seal(nonce, aad, message, tag);
      const what = `${cipher} ${len} bytes, ${aad} of them associated data`;
      assert.deepEqual(
        Buffer.from(message.subarray(0, aad)),
        plain.subarray(0, aad),
        `${what}: aad in clear`,
      );
      assert.deepEqual(Buffer.from(message.subarray(aad)), want.body, `${what}: ciphertext`);
      assert.deepEqual(Buffer.from(tag), want.tag, `${what}: tag`);
      assert.ok(opener.open(nonce, aad, message, tag), `${what}: opens`);
      assert.deepEqual(Buffer.from(message), plain, `${what}: plaintext back`);
    }
  }
});

test("open refuses a flipped bit anywhere (associated data, ciphertext, tag, nonce) and leaves the message as it was", () => {
  const key = randomBytes(32);
  const sealer = new AeadHandle("aes-256-gcm", key, true, 16);
  const opener = new AeadHandle("aes-256-gcm", key, false, 16);
  const nonce = randomBytes(12);
  const message = Uint8Array.from(randomBytes(64));
  const tag = new Uint8Array(16);
  sealer.seal(nonce, 8, message, tag);
  for (let bit = 0; bit < 64 * 8; bit += 7) {
    const bad = Uint8Array.from(message);
    bad[bit >> 3]! ^= 1 << (bit & 7);
    const before = Uint8Array.from(bad);
    assert.equal(opener.open(nonce, 8, bad, tag), false, `message bit ${bit}`);
    assert.deepEqual(bad, before, `message bit ${bit}: untouched`);
  }
  for (let bit = 0; bit < 128; bit += 5) {
    const badTag = Uint8Array.from(tag);
    badTag[bit >> 3]! ^= 1 << (bit & 7);
    assert.equal(opener.open(nonce, 8, Uint8Array.from(message), badTag), false, `tag bit ${bit}`);
  }
  const otherNonce = Uint8Array.from(nonce);
  otherNonce[11]! ^= 1;
  assert.equal(opener.open(otherNonce, 8, Uint8Array.from(message), tag), false, "nonce");
  // A wrong key's context: refused too.
  const stranger = new AeadHandle("aes-256-gcm", randomBytes(32), false, 16);
  assert.equal(stranger.open(nonce, 8, Uint8Array.from(message), tag), false, "key");
  // After all the failures the context still opens the genuine message.
  assert.ok(opener.open(nonce, 8, message, tag));
});

test("a context encrypts or decrypts, checks its arguments' sizes, and is unusable once destroyed", () => {
  const key = randomBytes(32);
  const sealer = new AeadHandle("aes-256-gcm", key, true, 16);
  const opener = new AeadHandle("aes-256-gcm", key, false, 16);
  const m = new Uint8Array(32);
  const tag = new Uint8Array(16);
  assert.throws(() => opener.seal(new Uint8Array(12), 8, m, tag), /decrypting/);
  assert.throws(() => sealer.open(new Uint8Array(12), 8, m, tag), /encrypting/);
  assert.throws(() => sealer.seal(new Uint8Array(11), 8, m, tag), /nonce/);
  assert.throws(() => sealer.seal(new Uint8Array(12), 33, m, tag), /aadLength/);
  assert.throws(() => sealer.seal(new Uint8Array(12), -1, m, tag), /aadLength/);
  assert.throws(() => sealer.seal(new Uint8Array(12), 8, m, new Uint8Array(15)), /tag/);
  assert.throws(
    () => sealer.seal(new Uint8Array(12), 8, new Uint16Array(16) as unknown as Uint8Array, tag),
    /message/,
  );
  assert.throws(() => new AeadHandle("aes-256-cbc" as AeadCipher, key, true, 16), /cipher/);
  assert.throws(() => new AeadHandle("aes-256-gcm", key.subarray(0, 16), true, 16), /key/);
  assert.throws(() => new AeadHandle("aes-256-gcm", key, true, 17), /tagLength/);
  sealer.destroy();
  sealer.destroy(); // twice is harmless
  assert.throws(() => sealer.seal(new Uint8Array(12), 8, m, tag), /destroyed/);
});
