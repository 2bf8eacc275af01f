// The sender's SACK scoreboard (RFC 6675 bookkeeping).

import { test } from "node:test";
import assert from "node:assert/strict";
import { SackScoreboard } from "./scoreboard.js";

test("update merges blocks, clips at snd_una, ignores D-SACK and blocks beyond snd_max", () => {
  const sb = new SackScoreboard();
  assert.equal(sb.update([[200, 300]], 100, 1000), true);
  assert.equal(sb.update([[200, 300]], 100, 1000), false, "nothing new");
  assert.equal(sb.update([[50, 90]], 100, 1000), false, "D-SACK below snd_una");
  assert.equal(sb.update([[900, 1100]], 100, 1000), false, "beyond snd_max");
  assert.equal(
    sb.update(
      [
        [300, 400],
        [80, 150],
      ],
      100,
      1000,
    ),
    true,
  );
  assert.deepEqual(sb.ranges, [
    [100, 150],
    [200, 400],
  ]);
  assert.equal(sb.bytes, 250);
  sb.update([[140, 210]], 100, 1000);
  assert.deepEqual(sb.ranges, [[100, 400]]);
  assert.equal(sb.bytes, 300);
});

test("advance drops and trims ranges below the new snd_una", () => {
  const sb = new SackScoreboard();
  sb.update(
    [
      [200, 300],
      [400, 500],
    ],
    100,
    1000,
  );
  sb.advance(250);
  assert.deepEqual(sb.ranges, [
    [250, 300],
    [400, 500],
  ]);
  assert.equal(sb.bytes, 150);
  sb.advance(600);
  assert.equal(sb.empty, true);
  assert.equal(sb.bytes, 0);
});

test("lookups: rangeAt, nextStart, sackedIn", () => {
  const sb = new SackScoreboard();
  sb.update(
    [
      [200, 300],
      [400, 500],
    ],
    100,
    1000,
  );
  assert.deepEqual(sb.rangeAt(250), [200, 300]);
  assert.equal(sb.rangeAt(300), undefined);
  assert.equal(sb.nextStart(100), 200);
  assert.equal(sb.nextStart(200), 400);
  assert.equal(sb.nextStart(450), undefined);
  assert.equal(sb.sackedIn(250, 450), 100);
});

test("lostEnd: holes below more than the threshold of SACKed bytes are lost (IsLost)", () => {
  const sb = new SackScoreboard();
  sb.update(
    [
      [200, 300],
      [400, 500],
      [600, 700],
    ],
    100,
    1000,
  );
  assert.equal(sb.lostEnd(100, 250), 200, "300 bytes above the first hole");
  assert.equal(sb.lostEnd(100, 150), 400, "200 above the second hole");
  assert.equal(sb.lostEnd(100, 50), 600);
  assert.equal(sb.lostEnd(100, 300), 100, "nothing lost yet");
});

test("sequence wrap-around", () => {
  const sb = new SackScoreboard();
  sb.update([[0xfffffff0, 0x10]], 0xffffff00, 0x100);
  assert.equal(sb.bytes, 0x20);
  assert.deepEqual(sb.rangeAt(5), [0xfffffff0, 0x10]);
  sb.advance(0x8);
  assert.equal(sb.bytes, 8);
});

test("the number of ranges is bounded", () => {
  const sb = new SackScoreboard();
  for (let i = 0; i < 100; i++) sb.update([[1000 + i * 10, 1005 + i * 10]], 0, 100_000);
  assert.equal(sb.ranges.length, 32);
});
