/*
 * Raw W3C baggage handling for one entry name.
 *
 * @opentelemetry/core's W3CBaggagePropagator is the right tool for turning a whole header into
 * OpenTelemetry context (the SDK uses it), but it cannot serve the proxy path: it stops reading
 * after 8192 bytes or 180 entries (so our entry, placed late in a large header, vanishes), it folds
 * repeated names into one (so a conflict cannot be seen), and re-serialising through it re-encodes
 * and drops other entries past the same caps. These helpers touch only the entries named `name` and
 * leave every other entry byte for byte where it was.
 */

const EMPTY: readonly string[] = Object.freeze([]);

function safeDecode(text: string): string | undefined {
  if (text.indexOf('%') === -1) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

/** The entry's key if it can be read; undefined for an entry with no '=' or bad percent-encoding. */
function entryKey(entry: string): string | undefined {
  const eq = entry.indexOf('=');
  if (eq <= 0) return undefined;
  const semi = entry.indexOf(';');
  if (semi !== -1 && semi < eq) return undefined;
  return safeDecode(entry.slice(0, eq).trim());
}

function entryValue(entry: string): string | undefined {
  const eq = entry.indexOf('=');
  const semi = entry.indexOf(';', eq);
  const raw = (semi === -1 ? entry.slice(eq + 1) : entry.slice(eq + 1, semi)).trim();
  return safeDecode(raw);
}

/** The header's comma-separated entries, as they are (no trimming, empty ones included). */
function* entries(text: string): Generator<string> {
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf(',', start);
    if (end === -1) end = text.length;
    yield text.slice(start, end);
    start = end + 1;
  }
}

function join(header: string | readonly string[] | undefined): string {
  if (header === undefined) return '';
  return typeof header === 'string' ? header : header.join(',');
}

/**
 * Values of every entry named `name`, in order. Entries with malformed percent-encoding or an
 * empty value are dropped, as the W3C specification asks of a receiver.
 */
export function baggageValues(header: string | readonly string[] | undefined, name: string): readonly string[] {
  const text = join(header);
  // Fast path: most headers do not mention the name at all.
  if (text.length === 0 || (text.indexOf(name) === -1 && text.indexOf('%') === -1)) return EMPTY;
  let found: string[] | undefined;
  for (const entry of entries(text)) {
    if (entryKey(entry) !== name) continue;
    const value = entryValue(entry);
    // An empty value is no entry, as OpenTelemetry's propagator treats it.
    if (value !== undefined && value.length > 0) (found ??= []).push(value);
  }
  return found ?? EMPTY;
}

/**
 * The header with `name` set to `value`: the first entry of that name is replaced where it stands,
 * later ones removed, and when there is none the entry is appended. Other entries are untouched.
 * With `value` undefined every entry of that name is removed (an empty result means: no header).
 */
export function mergeBaggage(header: string | readonly string[] | undefined, name: string, value: string | undefined): string {
  const text = join(header);
  const own = value === undefined ? undefined : `${encodeURIComponent(name)}=${encodeURIComponent(value)}`;
  if (text.trim().length === 0) return own ?? '';
  if (text.indexOf(name) === -1 && text.indexOf('%') === -1) {
    return own === undefined ? text : `${text},${own}`;
  }
  const out: string[] = [];
  let replaced = false;
  for (const entry of entries(text)) {
    if (entryKey(entry) === name) {
      if (!replaced && own !== undefined) {
        // Keep the entry's leading whitespace so the header reads as it did.
        const lead = entry.length - entry.trimStart().length;
        out.push(entry.slice(0, lead) + own);
      }
      replaced = true;
    } else {
      out.push(entry);
    }
  }
  if (!replaced) {
    if (own !== undefined) out.push(own);
    return out.join(',');
  }
  const merged = out.join(',');
  return merged.trim().length === 0 ? '' : merged;
}
