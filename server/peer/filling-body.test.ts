import { test } from "node:test";
import assert from "node:assert/strict";
import { FillingBody } from "./filling-body.js";

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

const content = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));

test("readers get every byte of their range while the body fills, in any number and range", async () => {
  const b = new FillingBody(content.length);
  const whole = collect(b.read(0, 999));
  const mid = collect(b.read(100, 599));
  const tail = collect(b.read(990, 999));
  for (let off = 0; off < content.length; off += 77) {
    assert.equal(b.append(content.subarray(off, Math.min(off + 77, content.length))), true);
    await Promise.resolve();
  }
  assert.equal(b.complete, true);
  await b.done();
  assert.deepEqual(await whole, content);
  assert.deepEqual(await mid, content.subarray(100, 600));
  assert.deepEqual(await tail, content.subarray(990));
  // A reader that starts after completion gets views of the buffer, at once.
  const late = b.read(0, 999);
  const first = await late.next();
  assert.equal(first.value.length, 1000);
  assert.equal(first.value.buffer, b.buf.buffer);
});

test("a reader yields what is there, then waits; views never change after they are handed out", async () => {
  const b = new FillingBody(10);
  b.append(Buffer.from("abcd"));
  const it = b.read(0, 9);
  const one = (await it.next()).value as Buffer;
  assert.equal(one.toString(), "abcd");
  const pending = it.next();
  b.append(Buffer.from("efghij"));
  assert.equal(((await pending).value as Buffer).toString(), "efghij");
  assert.equal(one.toString(), "abcd");
  assert.equal((await it.next()).done, true);
});

test("overrun is refused; failure reaches readers only past the bytes already filled", async () => {
  const b = new FillingBody(8);
  assert.equal(b.append(Buffer.from("123456789")), false, "more than the size");
  assert.equal(b.received, 0);
  b.append(Buffer.from("1234"));
  const it = collect(b.read(0, 7));
  const early = collect(b.read(0, 3));
  const done = b.done();
  b.fail(new Error("cut"));
  await assert.rejects(it, /cut/);
  await assert.rejects(done, /cut/);
  assert.equal((await early).toString(), "1234");
  assert.equal(b.append(Buffer.from("5")), false, "nothing after failure");
  // A failure after completion changes nothing.
  const c = new FillingBody(1);
  c.append(Buffer.from("x"));
  c.fail(new Error("late"));
  assert.equal(c.failed, null);
  await c.done();
});

test("bad ranges are rejected; an empty body is complete at once", async () => {
  const b = new FillingBody(4);
  await assert.rejects(collect(b.read(2, 4)), RangeError);
  await assert.rejects(collect(b.read(-1, 2)), RangeError);
  const e = new FillingBody(0);
  assert.equal(e.complete, true);
  await e.done();
});
