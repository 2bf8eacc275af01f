// Logged times -> Unix seconds, the one `time` every reader produces. Pure; every pattern is
// anchored with bounded repeats, so a long field costs no more than a short one.
//   CLF        01/Aug/1995:00:00:01 -0400        (Apache %t, nginx $time_local)
//   ISO 8601   1995-08-01T04:00:01Z, 1995-08-01T00:00:01.250-04:00, 1995-08-01 04:00:01
//              (no zone: UTC; nginx $time_iso8601, Traefik, W3C date + time)
//   epoch      807249601, 807249601.25, 807249601250 (ms), ... (Caddy ts, nginx $msec)

const MONTHS: Record<string, number> = {
  Jan: 0,
  Feb: 1,
  Mar: 2,
  Apr: 3,
  May: 4,
  Jun: 5,
  Jul: 6,
  Aug: 7,
  Sep: 8,
  Oct: 9,
  Nov: 10,
  Dec: 11,
};
const MONTH_NAMES = Object.keys(MONTHS);

function utcSeconds(
  year: number,
  month: number,
  day: number,
  hh: number,
  mm: number,
  ss: number,
): number | null {
  if (month < 0 || month > 11 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60) return null;
  return Date.UTC(year, month, day, hh, mm, ss) / 1000;
}

/** "01/Aug/1995:00:00:01 -0400" -> Unix seconds, or null if malformed. */
export function parseClfDate(text: string): number | null {
  const m = /^(\d{2})\/([A-Z][a-z]{2})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/.exec(text);
  if (!m) return null;
  const month = Object.hasOwn(MONTHS, m[2]!) ? MONTHS[m[2]!]! : -1;
  const t = utcSeconds(Number(m[3]), month, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]));
  if (t === null) return null;
  return t - (Number(m[8]) * 60 + Number(m[9])) * 60 * (m[7] === "-" ? -1 : 1);
}

// Log lines come in time order, so consecutive lines share the date up to the minute:
// parse "DD/Mon/YYYY:HH:MM" + zone once per minute and add the seconds.
let lastMinuteKey = "";
let lastMinuteBase: number | null = null;

/** parseClfDate, parsing the date and zone once per minute of consecutive lines. */
export function parseClfDateFast(text: string): number | null {
  if (text.length !== 26 || text.charCodeAt(17) !== 58 /* : */) return parseClfDate(text);
  const s1 = text.charCodeAt(18) - 48;
  const s2 = text.charCodeAt(19) - 48;
  if (s1 < 0 || s2 < 0 || s2 > 9 || s1 * 10 + s2 > 60) return null;
  const key = text.slice(0, 17) + text.slice(20);
  if (key !== lastMinuteKey) {
    lastMinuteBase = parseClfDate(text.slice(0, 18) + "00" + text.slice(20));
    lastMinuteKey = key;
  }
  return lastMinuteBase === null ? null : lastMinuteBase + s1 * 10 + s2;
}

/** Unix seconds -> "01/Jan/2001:00:00:00 +0000" (UTC), the inverse of parseClfDate. */
export function formatClfDate(seconds: number): string {
  const d = new Date(seconds * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return (
    `${p(d.getUTCDate())}/${MONTH_NAMES[d.getUTCMonth()]!}/${d.getUTCFullYear()}:` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`
  );
}

const ISO =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?$/;

/** ISO 8601 / RFC 3339 date and time -> Unix seconds (fraction kept); no zone means UTC. */
export function parseIsoTime(text: string): number | null {
  const m = ISO.exec(text);
  if (!m) return null;
  const t = utcSeconds(
    Number(m[1]),
    Number(m[2]) - 1,
    Number(m[3]),
    Number(m[4]),
    Number(m[5]),
    Number(m[6]),
  );
  if (t === null) return null;
  const fraction = m[7] === undefined ? 0 : Number(`0.${m[7]}`);
  const offset =
    m[9] === undefined ? 0 : (Number(m[10]) * 60 + Number(m[11] ?? 0)) * 60 * (m[9] === "-" ? -1 : 1);
  return t + fraction - offset;
}

/**
 * A Unix time as a number in seconds, milliseconds, microseconds or nanoseconds (Caddy's
 * time_format choices), told apart by magnitude: 1e11 s is the year 5138, so anything larger
 * is a finer unit. Null for negative or non-finite values.
 */
export function epochSeconds(value: number): number | null {
  if (!Number.isFinite(value) || value < 0) return null;
  if (value < 1e11) return value;
  if (value < 1e14) return value / 1e3;
  if (value < 1e17) return value / 1e6;
  return value / 1e9;
}

const EPOCH = /^\d{1,20}(?:\.\d{1,9})?$/;

/** A logged time in any of the forms above -> Unix seconds, or null. */
export function parseLoggedTime(text: string): number | null {
  if (EPOCH.test(text)) return epochSeconds(Number(text));
  const c = text.charCodeAt(2);
  if (c === 47 /* / */) return parseClfDateFast(text);
  return parseIsoTime(text);
}
