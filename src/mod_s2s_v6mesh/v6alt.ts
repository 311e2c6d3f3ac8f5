/**
 * The .v6.alt naming scheme (SPEC section 2): IPv6 address <-> domain name.
 * Plain Lua library with no Prosody dependency; other modules can use it as
 * `require "mod_s2s_v6mesh.v6alt"`. Everything here runs on Lua 5.1-5.4 and
 * LuaJIT, uses only the string library and arithmetic (no bitwise operators),
 * and stays free of TypeScriptToLua runtime helpers because decode() sits on
 * the stanza path.
 * Addresses travel as "packed" 16-byte binary strings; parse_ip/format_ip
 * convert to and from text.
 */

export const suffix = ".v6.alt";

/** Why a name was refused; the third return value of decode(). */
export type RejectCode =
    | "not-v6alt"
    | "empty-label"
    | "uppercase"
    | "bad-character"
    | "several-hyphens"
    | "bad-length"
    | "short-run"
    | "padding-bits"
    | "uncompressed"
    | "misplaced-hyphen";

const LABEL_LENGTH = 26; // 128 bits in base32 = 25.6 characters
const BYTE_a = 97;

const ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";
/** base32 digit value -> character byte */
const DIGIT_BYTE = new LuaTable<number, number>();
/** character byte -> base32 digit value (lowercase only) */
const DIGIT_VALUE = new LuaTable<number, number>();
for (const i of $range(1, 32)) {
    const b = string.byte(ALPHABET, i);
    DIGIT_BYTE.set(i - 1, b);
    DIGIT_VALUE.set(b, i - 1);
}

const IPV4_MAPPED_PREFIX = string.rep(string.char(0), 10) + string.char(255, 255);

const P8 = 256;
const P16 = 65536;

/** 5 bytes -> 8 base32 characters. */
function encodeQuantum(b1: number, b2: number, b3: number, b4: number, b5: number): string {
    // 40 bits fit a double exactly; split into two 20-bit halves.
    const hi = b1 * 4096 + b2 * 16 + Math.floor(b3 / 16);
    const lo = (b3 % 16) * P16 + b4 * P8 + b5;
    return string.char(
        DIGIT_BYTE.get(Math.floor(hi / 32768)),
        DIGIT_BYTE.get(Math.floor(hi / 1024) % 32),
        DIGIT_BYTE.get(Math.floor(hi / 32) % 32),
        DIGIT_BYTE.get(hi % 32),
        DIGIT_BYTE.get(Math.floor(lo / 32768)),
        DIGIT_BYTE.get(Math.floor(lo / 1024) % 32),
        DIGIT_BYTE.get(Math.floor(lo / 32) % 32),
        DIGIT_BYTE.get(lo % 32)
    );
}

/** The 26 lowercase base32 characters of a packed address. */
function base32(packed: string): string {
    const [b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15, b16] = string.byte(packed, 1, 16);
    return (
        encodeQuantum(b1, b2, b3, b4, b5) +
        encodeQuantum(b6, b7, b8, b9, b10) +
        encodeQuantum(b11, b12, b13, b14, b15) +
        string.char(DIGIT_BYTE.get(Math.floor(b16 / 8)), DIGIT_BYTE.get((b16 % 8) * 4))
    );
}

/**
 * Compress the longest run of "a" inside positions 2..25 into one "-".
 * Ties go to the first run (canonical) or, with preferLast, to the last one
 * (what the deployed reference implementation emits).
 */
function compress(full: string, preferLast: boolean): string {
    let bestStart = 0;
    let bestLength = 1;
    let from = 2;
    for (;;) {
        const [s, e] = string.find(full, "aa+", from);
        if (s === undefined || e === undefined || s > LABEL_LENGTH - 2) break;
        const stop = e < LABEL_LENGTH ? e : LABEL_LENGTH - 1;
        const length = stop - s + 1;
        if (length > bestLength || (preferLast && length === bestLength && length >= 2)) {
            bestStart = s;
            bestLength = length;
        }
        from = e + 1;
    }
    if (bestStart === 0) return full;
    return string.sub(full, 1, bestStart - 1) + "-" + string.sub(full, bestStart + bestLength);
}

function isPacked(packed: unknown): packed is string {
    return type(packed) === "string" && (packed as string).length === 16;
}

/** Canonical name of a packed address, e.g. "fiabbgadu-e.v6.alt". */
export function encode(packed: string): LuaMultiReturn<[string, undefined] | [undefined, string]> {
    if (!isPacked(packed)) return $multi(undefined, "an address must be a 16-byte packed string");
    return $multi(compress(base32(packed), false) + suffix, undefined);
}

/** The name the reference implementation emits (last run wins on ties). */
export function encode_reference(packed: string): LuaMultiReturn<[string, undefined] | [undefined, string]> {
    if (!isPacked(packed)) return $multi(undefined, "an address must be a 16-byte packed string");
    return $multi(compress(base32(packed), true) + suffix, undefined);
}

/** True when the name ends in ".v6.alt" (a suffix test only, for hot paths). */
export function is_v6alt(name: string): boolean {
    return string.sub(name, -7) === suffix;
}

/* ---------------------------------------------------------------------- */
/* Names as the layers below read them (SPEC 3.2)                         */

/** UTF-8 of U+3002, U+FF0E and U+FF61: IDNA reads each as a label separator. */
const IDNA_DOTS = [string.char(227, 128, 130), string.char(239, 188, 142), string.char(239, 189, 161)];
const NON_ASCII = "[" + string.char(128) + "-" + string.char(255) + "]";
const BYTE_DOT = 46;
const BYTE_t = 116;
const BYTE_T = 84;

/**
 * The name as DNS would be asked for it: IDNA's other label separators
 * (U+3002, U+FF0E, U+FF61) as ".", trailing dots dropped (resolvers drop
 * them), ASCII letters lowercased (DNS ignores their case).
 */
export function normalize(name: string): string {
    let text = name;
    if (string.find(text, NON_ASCII)[0] !== undefined) {
        for (const dot of IDNA_DOTS) [text] = string.gsub(text, dot, ".");
    }
    let last = text.length;
    while (last > 0 && string.byte(text, last) === BYTE_DOT) last -= 1;
    return string.lower(string.sub(text, 1, last));
}

function underV6alt(name: string): boolean {
    return name === "v6.alt" || string.sub(name, -7) === suffix;
}

/**
 * Why a name was refused, as an operator reads it: `err` about `read` (the
 * name as mesh_name reads it), said of `written` when that is spelled
 * otherwise ("A-E.V6.ALT. is read as a-e.v6.alt: ...").
 */
export function read_failure(written: string, read: string, err: string): string {
    return written === read ? err : `${written} is read as ${read}: ${err}`;
}

/**
 * The .v6.alt name that `name` is to the layers below Prosody, normalized
 * (see normalize), or undefined when it is none. `toAscii` is the IDNA
 * conversion those layers apply (Prosody's util.encodings.idna.to_ascii):
 * when given, a non-ASCII name that it turns into a .v6.alt name is one.
 * Names that cannot be one (the last character is not "t", "T", "." or
 * non-ASCII) cost a single byte test.
 */
export function mesh_name(name: string, toAscii?: (this: void, name: string) => string | undefined): string | undefined {
    const lastByte = string.byte(name, -1);
    if (lastByte === undefined || (lastByte !== BYTE_t && lastByte !== BYTE_T && lastByte !== BYTE_DOT && lastByte < 128)) return undefined;
    if (string.sub(name, -7) === suffix && string.find(name, "[^a-z0-9%.%-]")[0] === undefined) return name;
    if (toAscii !== undefined && string.find(name, NON_ASCII)[0] !== undefined) {
        const [ok, ascii] = pcall(toAscii, name);
        if (ok && type(ascii) === "string") {
            const read = normalize(ascii as string);
            if (underV6alt(read)) return read;
        }
    }
    const normalized = normalize(name);
    return underV6alt(normalized) ? normalized : undefined;
}

/** Whether a DNS query name is under v6.alt (or ends in it) once normalized: the resolvers' last gate. */
export function reaches_v6alt(name: string): boolean {
    return string.sub(normalize(name), -6) === "v6.alt";
}

type DecodeResult = LuaMultiReturn<[string, undefined, undefined] | [undefined, string, RejectCode]>;

/** Control characters (a newline, say) as \ddd, so that every message is one line. */
function printable(text: string): string {
    const [clean] = string.gsub(text, "%c", (c: string) => string.format("\\%03d", string.byte(c)));
    return clean;
}

function reject(name: string, code: RejectCode, why: string): DecodeResult {
    return $multi(undefined, printable(`'${name}' is not a valid .v6.alt name: ${why}`), code);
}

/**
 * Does a run of exactly `length` "a" (or a longer one) occur in label[from..to]?
 * Returns 2 for a longer run, 1 for an equal one, 0 for neither.
 */
function runsAgainst(label: string, from: number, to: number, length: number): number {
    let found = 0;
    let at = from;
    while (at <= to) {
        const [s, e] = string.find(label, "a+", at);
        if (s === undefined || e === undefined || s > to) break;
        const runLength = (e < to ? e : to) - s + 1;
        if (runLength > length) return 2;
        if (runLength === length) found = 1;
        at = e + 1;
    }
    return found;
}

/** Is the hyphen where the canonical (first-longest) or reference (last-longest) encoder puts it? */
function hyphenPlacedByEncoder(label: string, hyphen: number, runLength: number): boolean {
    const length = label.length;
    // The run may neither start at the first character nor include the last.
    if (hyphen < 2 || hyphen > length - 1) return false;
    // It must be a whole run (the first and last character do not extend it).
    if (hyphen > 2 && string.byte(label, hyphen - 1) === BYTE_a) return false;
    if (hyphen + 1 < length && string.byte(label, hyphen + 1) === BYTE_a) return false;
    // And the longest one; on a tie, the first or the last of the tied runs.
    const before = runsAgainst(label, 2, hyphen - 1, runLength);
    if (before === 2) return false;
    const after = runsAgainst(label, hyphen + 1, length - 1, runLength);
    if (after === 2) return false;
    return before === 0 || after === 0;
}


/* Fast path ------------------------------------------------------------- */

/**
 * Two characters (as c1 * 256 + c2) -> their 10-bit value, or NOT_BASE32
 * when either is not a base32 character. Every slot with an ASCII c1 is
 * filled so that Lua keeps the table in its array part (32768 entries) and
 * lookups are plain indexing; a c1 over 127 falls outside and reads as nil.
 * The multiplier must be 256, not 128: with 128 a high byte in c2 would
 * land in the slot of another pair and decode as a valid character.
 */
const NOT_BASE32 = -1073741824;
const PAIR_VALUE = new LuaTable<number, number | undefined>();
for (const key of $range(1, 128 * 256 - 1)) PAIR_VALUE.set(key, NOT_BASE32);
for (const i of $range(0, 31)) {
    for (const j of $range(0, 31)) {
        PAIR_VALUE.set(DIGIT_BYTE.get(i) * 256 + DIGIT_BYTE.get(j), i * 32 + j);
    }
}
/** RUN_OF_A[n] = n times "a" */
const RUN_OF_A = new LuaTable<number, string>();
for (const n of $range(0, LABEL_LENGTH + 1)) RUN_OF_A.set(n, string.rep("a", n));

/**
 * 26 characters -> packed address, two characters per table lookup; undefined
 * when one is not a base32 character, or when the last one sets padding bits
 * and dropPadding is false.
 */
function unbase32(full: string, dropPadding: boolean): string | undefined {
    const [c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18, c19, c20, c21, c22, c23, c24, c25, c26] =
        string.byte(full, 1, LABEL_LENGTH);
    const v1 = PAIR_VALUE.get(c1 * 256 + c2) ?? NOT_BASE32;
    const v2 = PAIR_VALUE.get(c3 * 256 + c4) ?? NOT_BASE32;
    const v3 = PAIR_VALUE.get(c5 * 256 + c6) ?? NOT_BASE32;
    const v4 = PAIR_VALUE.get(c7 * 256 + c8) ?? NOT_BASE32;
    const v5 = PAIR_VALUE.get(c9 * 256 + c10) ?? NOT_BASE32;
    const v6 = PAIR_VALUE.get(c11 * 256 + c12) ?? NOT_BASE32;
    const v7 = PAIR_VALUE.get(c13 * 256 + c14) ?? NOT_BASE32;
    const v8 = PAIR_VALUE.get(c15 * 256 + c16) ?? NOT_BASE32;
    const v9 = PAIR_VALUE.get(c17 * 256 + c18) ?? NOT_BASE32;
    const v10 = PAIR_VALUE.get(c19 * 256 + c20) ?? NOT_BASE32;
    const v11 = PAIR_VALUE.get(c21 * 256 + c22) ?? NOT_BASE32;
    const v12 = PAIR_VALUE.get(c23 * 256 + c24) ?? NOT_BASE32;
    const v13 = PAIR_VALUE.get(c25 * 256 + c26) ?? NOT_BASE32;
    // A character outside the alphabet (uppercase, say) made one value negative.
    if (v1 + v2 + v3 + v4 + v5 + v6 + v7 + v8 + v9 + v10 + v11 + v12 + v13 < 0) return undefined;
    const padding = v13 % 4;
    if (padding !== 0 && !dropPadding) return undefined;
    // Each 4 values hold 40 bits = 5 bytes: split them with % and exact division.
    const m1 = v1 % 4, m2 = v2 % 16, m3 = v3 % 64, m4 = v4 % 256;
    const m5 = v5 % 4, m6 = v6 % 16, m7 = v7 % 64, m8 = v8 % 256;
    const m9 = v9 % 4, m10 = v10 % 16, m11 = v11 % 64, m12 = v12 % 256;
    return string.char(
        (v1 - m1) / 4, m1 * 64 + (v2 - m2) / 16, m2 * 16 + (v3 - m3) / 64, m3 * 4 + (v4 - m4) / 256, m4,
        (v5 - m5) / 4, m5 * 64 + (v6 - m6) / 16, m6 * 16 + (v7 - m7) / 64, m7 * 4 + (v8 - m8) / 256, m8,
        (v9 - m9) / 4, m9 * 64 + (v10 - m10) / 16, m10 * 16 + (v11 - m11) / 64, m11 * 4 + (v12 - m12) / 256, m12,
        (v13 - padding) / 4
    );
}

/**
 * Is there a run of at least `length` "a" lying within label[from..to]?
 * The first occurrence of the run decides: later ones end later still.
 */
function hasRun(label: string, from: number, to: number, length: number): boolean {
    const [s] = string.find(label, RUN_OF_A.get(length), from, true);
    return s !== undefined && s + length - 1 <= to;
}

/**
 * Decode label[1..length] (the rest of the string is ignored) if it is
 * exactly what an encoder emits, or return undefined
 * so that the full path can say what is wrong with it. Plain finds and table
 * lookups only: this runs for every stanza to a .v6.alt peer.
 */
function decodeEncoderLabel(label: string, length: number): string | undefined {
    const [hyphen] = string.find(label, "-", 1, true);
    let full = label;
    if (hyphen === undefined) {
        if (length !== LABEL_LENGTH) return undefined;
        const [s] = string.find(label, "aa", 2, true);
        if (s !== undefined && s <= LABEL_LENGTH - 2) return undefined;
    } else {
        const run = LABEL_LENGTH + 1 - length;
        if (run < 2 || hyphen < 2 || hyphen > length - 1) return undefined;
        // (A second "-" is caught below: it is not a base32 character.)
        if (hyphen > 2 && string.byte(label, hyphen - 1) === BYTE_a) return undefined;
        if (hyphen + 1 < length && string.byte(label, hyphen + 1) === BYTE_a) return undefined;
        // Usually no other run is as long; only then do ties need a closer look.
        if (hasRun(label, 2, length - 1, run)) {
            if (hasRun(label, 2, hyphen - 1, run + 1) || hasRun(label, hyphen + 1, length - 1, run + 1)) return undefined;
            if (hasRun(label, 2, hyphen - 1, run) && hasRun(label, hyphen + 1, length - 1, run)) return undefined;
        }
        full = string.sub(label, 1, hyphen - 1) + RUN_OF_A.get(run) + string.sub(label, hyphen + 1, length);
    }
    return unbase32(full, false);
}

/**
 * Name -> packed address. Only the label just before ".v6.alt" matters, so
 * every subdomain of a server decodes to its address. Strict mode accepts the
 * canonical form and the reference implementation's tie form and nothing
 * else; lax mode also takes uppercase, uncompressed and misplaced-hyphen
 * aliases and ignores the padding bits.
 */
export function decode(name: string, lax?: boolean): DecodeResult {
    // The common cases first: a name as an encoder writes it, or a subdomain
    // of one (muc., upload.), with plain finds only.
    if (!lax && type(name) === "string") {
        const length = name.length;
        const [dot] = string.find(name, ".", 1, true);
        if (dot !== undefined && dot === length - 6 && string.find(name, suffix, dot, true)[0] === dot) {
            const packed = decodeEncoderLabel(name, dot - 1);
            if (packed !== undefined) return $multi(packed, undefined, undefined);
        } else if (
            dot !== undefined &&
            dot > 1 &&
            dot < length - 6 &&
            string.find(name, suffix, length - 6, true)[0] === length - 6 &&
            string.find(name, "..", 1, true)[0] === undefined
        ) {
            let labelDot = dot;
            for (;;) {
                const [next] = string.find(name, ".", labelDot + 1, true);
                if (next === undefined || next >= length - 6) break;
                labelDot = next;
            }
            const packed = decodeEncoderLabel(string.sub(name, labelDot + 1, length - 7), length - 7 - labelDot);
            if (packed !== undefined) return $multi(packed, undefined, undefined);
        }
    }
    if (type(name) !== "string") return reject(tostring(name), "not-v6alt", "not a string");
    if (string.sub(name, -7) !== suffix) {
        if (string.lower(string.sub(name, -7)) === suffix) {
            return reject(name, "not-v6alt", "the .v6.alt suffix must be lowercase");
        }
        return reject(name, "not-v6alt", "it does not end in .v6.alt");
    }
    const [prefix, matched] = string.match(name, "^(.-)([^.]*)%.v6%.alt$");
    let label = matched as string;
    if (label === "" || (prefix !== "" && (string.byte(prefix, 1) === 46 || string.find(prefix, "..", 1, true)[0] !== undefined))) {
        return reject(name, "empty-label", "it has an empty label");
    }
    if (string.find(label, "%u")[0] !== undefined) {
        if (!lax) return reject(name, "uppercase", "uppercase letters are not allowed (names are lowercase)");
        label = string.lower(label);
    }
    const [bad] = string.match(label, "[^a-z2-7%-]");
    if (bad !== undefined) {
        return reject(name, "bad-character", `'${bad}' is not a base32 character (a-z, 2-7)`);
    }
    const length = label.length;
    const [hyphen] = string.find(label, "-", 1, true);
    let full = label;
    let runLength = 0;
    if (hyphen !== undefined) {
        if (string.find(label, "-", hyphen + 1, true)[0] !== undefined) {
            return reject(name, "several-hyphens", "it has more than one '-'");
        }
        runLength = LABEL_LENGTH + 1 - length;
        if (runLength <= 0) {
            return reject(name, "bad-length", `a label with '-' must be shorter than ${LABEL_LENGTH} characters`);
        }
        if (runLength === 1) {
            return reject(name, "short-run", "'-' would stand for a single 'a' (it always stands for two or more)");
        }
        full = string.sub(label, 1, hyphen - 1) + string.rep("a", runLength) + string.sub(label, hyphen + 1);
    } else if (length !== LABEL_LENGTH) {
        return reject(name, "bad-length", `the label has ${length} characters; without '-' it needs ${LABEL_LENGTH}`);
    }
    if (!lax) {
        const lastByte = string.byte(full, LABEL_LENGTH);
        if (DIGIT_VALUE.get(lastByte) % 4 !== 0) {
            return reject(name, "padding-bits", `its last character '${string.char(lastByte)}' sets padding bits`);
        }
        if (hyphen === undefined) {
            const [s] = string.find(label, "aa", 2, true);
            if (s !== undefined && s <= LABEL_LENGTH - 2) {
                return reject(name, "uncompressed", `it is the uncompressed form of ${compress(label, false)}${suffix}`);
            }
        } else if (!hyphenPlacedByEncoder(label, hyphen, runLength)) {
            return reject(name, "misplaced-hyphen", `'-' is not where an encoder puts it (the name is ${compress(full, false)}${suffix})`);
        }
    }
    return $multi(unbase32(full, true) as string, undefined, undefined);
}

/* ---------------------------------------------------------------------- */
/* IPv6 text <-> packed                                                    */

type ParseResult = LuaMultiReturn<[string, undefined] | [undefined, string]>;

function parseFail(text: string, why: string): ParseResult {
    return $multi(undefined, printable(`'${text}' is not a valid IPv6 address: ${why}`));
}

/** Append the 16-bit groups of a colon-separated part to `groups`; false on a bad group. */
function parseGroups(part: string, groups: LuaTable<number, number>, allowIPv4Tail: boolean): boolean {
    if (part === "") return true;
    let at = 1;
    const length = part.length;
    for (;;) {
        const [colon] = string.find(part, ":", at, true);
        const piece = string.sub(part, at, colon === undefined ? length : colon - 1);
        if (colon === undefined && allowIPv4Tail && string.find(piece, ".", 1, true)[0] !== undefined) {
            const [a, b, c, d] = string.match(piece, "^(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)$");
            if (a === undefined) return false;
            // "010" could mean 8 or 10 depending on who reads it: refuse leading zeros.
            if (string.find(`.${a}.${b}.${c}.${d}`, "%.0%d")[0] !== undefined) return false;
            const o1 = tonumber(a) as number;
            const o2 = tonumber(b) as number;
            const o3 = tonumber(c) as number;
            const o4 = tonumber(d) as number;
            if (o1 > 255 || o2 > 255 || o3 > 255 || o4 > 255) return false;
            groups.set(groups.length() + 1, o1 * 256 + o2);
            groups.set(groups.length() + 1, o3 * 256 + o4);
            return true;
        }
        if (string.find(piece, "^%x%x?%x?%x?$")[0] === undefined) return false;
        groups.set(groups.length() + 1, tonumber(piece, 16) as number);
        if (colon === undefined) return true;
        at = colon + 1;
    }
}

/** IPv6 text -> packed 16-byte string. */
export function parse_ip(text: string): ParseResult {
    if (type(text) !== "string") return $multi(undefined, "an IPv6 address must be a string");
    if (text === "") return parseFail(text, "it is empty");
    if (string.find(text, "%", 1, true)[0] !== undefined) return parseFail(text, "zone indexes (%...) are not allowed");
    if (string.find(text, "^%[")[0] !== undefined) return parseFail(text, "remove the brackets");
    if (string.find(text, ":", 1, true)[0] === undefined) return parseFail(text, "it has no ':' (IPv4 addresses have no .v6.alt name)");
    const [double] = string.find(text, "::", 1, true);
    const head = new LuaTable<number, number>();
    const tail = new LuaTable<number, number>();
    if (double === undefined) {
        if (!parseGroups(text, head, true)) return parseFail(text, "malformed group");
        if (head.length() !== 8) return parseFail(text, "it needs 8 groups of hex digits or a '::'");
    } else {
        if (string.find(text, "::", double + 1, true)[0] !== undefined) return parseFail(text, "more than one '::'");
        const after = string.sub(text, double + 2);
        if (!parseGroups(string.sub(text, 1, double - 1), head, false) || !parseGroups(after, tail, true)) {
            return parseFail(text, "malformed group");
        }
        if (head.length() + tail.length() > 7) return parseFail(text, "too many groups");
    }
    const fill = 8 - head.length() - tail.length();
    const bytes = new LuaTable<number, number>();
    let n = 0;
    const push = (group: number) => {
        bytes.set(n + 1, Math.floor(group / 256));
        bytes.set(n + 2, group % 256);
        n += 2;
    };
    for (const i of $range(1, head.length())) push(head.get(i));
    for (const _ of $range(1, fill)) push(0);
    for (const i of $range(1, tail.length())) push(tail.get(i));
    return $multi(
        string.char(
            bytes.get(1), bytes.get(2), bytes.get(3), bytes.get(4), bytes.get(5), bytes.get(6), bytes.get(7), bytes.get(8),
            bytes.get(9), bytes.get(10), bytes.get(11), bytes.get(12), bytes.get(13), bytes.get(14), bytes.get(15), bytes.get(16)
        ),
        undefined
    );
}

/** Packed 16-byte string -> RFC 5952 text ("2001:db8::1", "::ffff:192.0.2.1"). */
export function format_ip(packed: string): string | undefined {
    if (!isPacked(packed)) return undefined;
    const groups = new LuaTable<number, number>();
    for (const i of $range(1, 8)) {
        const [hi, lo] = string.byte(packed, 2 * i - 1, 2 * i);
        groups.set(i, hi * 256 + lo);
    }
    // IPv4-mapped addresses keep their dotted quad (RFC 5952 section 5).
    if (string.sub(packed, 1, 12) === IPV4_MAPPED_PREFIX) {
        const [a, b, c, d] = string.byte(packed, 13, 16);
        return `::ffff:${a}.${b}.${c}.${d}`;
    }
    // Longest run of two or more zero groups, the first on ties.
    let bestStart = 0;
    let bestLength = 1;
    let runStart = 0;
    for (const i of $range(1, 9)) {
        if (i <= 8 && groups.get(i) === 0) {
            if (runStart === 0) runStart = i;
        } else if (runStart !== 0) {
            if (i - runStart > bestLength) {
                bestStart = runStart;
                bestLength = i - runStart;
            }
            runStart = 0;
        }
    }
    const parts = new LuaTable<number, string>();
    let i = 1;
    while (i <= 8) {
        if (i === bestStart) {
            parts.set(parts.length() + 1, i === 1 ? ":" : "");
            i += bestLength;
            if (i > 8) parts.set(parts.length() + 1, "");
        } else {
            parts.set(parts.length() + 1, string.format("%x", groups.get(i)));
            i += 1;
        }
    }
    return table.concat(parts as unknown as string[], ":");
}

/** IPv6 text -> canonical name. */
export function ip_to_name(text: string): LuaMultiReturn<[string, undefined] | [undefined, string]> {
    const [packed, err] = parse_ip(text);
    if (packed === undefined) return $multi(undefined, err as string);
    return encode(packed);
}

/** Name -> RFC 5952 address text. */
export function name_to_ip(name: string, lax?: boolean): LuaMultiReturn<[string, undefined, undefined] | [undefined, string, RejectCode]> {
    const [packed, err, code] = decode(name, lax);
    if (packed === undefined) return $multi(undefined, err as string, code as RejectCode);
    return $multi(format_ip(packed) as string, undefined, undefined);
}
