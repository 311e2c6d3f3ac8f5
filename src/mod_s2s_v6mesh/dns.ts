/**
 * The .v6.alt resolver's packet work (SPEC section 6): one DNS message in,
 * the reply out, or nothing when no reply is due. A .v6.alt name is its
 * address, so every answer follows from the question alone: no zone, no
 * recursion, no state. Pure logic with no sockets and no Prosody import:
 * v6alt-dnsd and the module's in-Prosody listener both use it.
 *
 * Every reply is the query's header and question (echoed byte for byte) plus
 * at most one record (the answer, or the SOA of v6.alt on a negative reply)
 * and an OPT record only where the query had one, so it is never larger
 * than the query plus one record: the resolver cannot amplify.
 */
import { decode, encode, parse_ip } from "./v6alt";
import { contains, parse_cidr, special_block } from "./policy";
import type { Cidr } from "./policy";

const TYPE_SOA = 6;
const TYPE_PTR = 12;
const TYPE_AAAA = 28;
const TYPE_SRV = 33;
const TYPE_OPT = 41;
const CLASS_IN = 1;

const NOERROR = 0;
const FORMERR = 1;
const NXDOMAIN = 3;
const NOTIMP = 4;
const REFUSED = 5;
const BADVERS = 16;

/** The UDP payload size this resolver announces in its OPT records. */
const UDP_PAYLOAD = 1232;

const byte = string.byte;
const char = string.char;
const sub = string.sub;
const lower = string.lower;

function u16(n: number): string {
    return char(Math.floor(n / 256) % 256, n % 256);
}

function u32(n: number): string {
    return u16(Math.floor(n / 65536)) + u16(n % 65536);
}

/** A parsed query: what the reply needs. */
interface Query {
    id: string;
    opcode: number;
    rd: boolean;
    /** The question exactly as sent (name, type, class), undefined when it does not parse. */
    question?: string;
    /** Labels of the question name, as sent. */
    labels: string[];
    qtype: number;
    qclass: number;
    /** An OPT record was present; its EDNS version. */
    edns: boolean;
    ednsVersion: number;
    /** Why the message is malformed (FORMERR), if it is. */
    malformed: boolean;
}

/**
 * Skip a name starting at `pos` (1-based); the position after it, or
 * undefined when it runs past the end. Compression pointers are stepped over,
 * not followed, so no loop is possible.
 */
function skipName(msg: string, pos: number): number | undefined {
    const length = msg.length;
    for (let steps = 0; steps < 128; steps++) {
        if (pos > length) return undefined;
        const len = byte(msg, pos);
        if (len === 0) return pos + 1;
        if (len >= 192) return pos + 2 <= length + 1 ? pos + 2 : undefined;
        if (len > 63) return undefined;
        pos = pos + 1 + len;
    }
    return undefined;
}

/** Read the question name at `pos`: labels, or undefined (compression and bad lengths are refused). */
function readQuestionName(msg: string, pos: number): LuaMultiReturn<[string[], number] | [undefined, undefined]> {
    const labels: string[] = [];
    let total = 0;
    const length = msg.length;
    for (;;) {
        if (pos > length) return $multi(undefined, undefined);
        const len = byte(msg, pos);
        if (len === 0) return $multi(labels, pos + 1);
        if (len > 63) return $multi(undefined, undefined); // a pointer or a reserved label type
        total += len + 1;
        if (total > 254 || pos + len > length) return $multi(undefined, undefined);
        labels.push(sub(msg, pos + 1, pos + len));
        pos = pos + 1 + len;
    }
}

function parse(msg: string): Query | undefined {
    const length = msg.length;
    if (length < 12) return undefined;
    const b3 = byte(msg, 3);
    if (b3 >= 128) return undefined; // a response: never answered
    const query: Query = {
        id: sub(msg, 1, 2),
        opcode: Math.floor(b3 / 8) % 16,
        rd: b3 % 2 === 1,
        labels: [],
        qtype: 0,
        qclass: 0,
        edns: false,
        ednsVersion: 0,
        malformed: false,
    };
    const [q1, q2, a1, a2, n1, n2, r1, r2] = byte(msg, 5, 12);
    const qdcount = q1 * 256 + q2;
    const ancount = a1 * 256 + a2;
    const nscount = n1 * 256 + n2;
    const arcount = r1 * 256 + r2;
    let pos = 13;
    if (query.opcode === 0 && qdcount === 1) {
        const [labels, after] = readQuestionName(msg, 13);
        if (labels !== undefined && after + 3 <= length) {
            const [t1, t2, c1, c2] = byte(msg, after, after + 3);
            query.labels = labels;
            query.qtype = t1 * 256 + t2;
            query.qclass = c1 * 256 + c2;
            query.question = sub(msg, 13, after + 3);
            pos = after + 4;
        } else {
            query.malformed = true;
        }
    } else {
        query.malformed = qdcount !== 1;
    }
    if (query.question === undefined) {
        // Not answered, but an OPT record in it is still answered with one
        // (RFC 6891 6.1.1): step over the questions to find it.
        for (let i = 1; i <= qdcount; i++) {
            const nameEnd = skipName(msg, pos);
            if (nameEnd === undefined || nameEnd + 3 > length) {
                query.malformed = true;
                return query;
            }
            pos = nameEnd + 4;
        }
    }
    // The other sections: skipped, except the OPT record of EDNS(0).
    const records = ancount + nscount + arcount;
    for (let i = 1; i <= records; i++) {
        const nameEnd = skipName(msg, pos);
        if (nameEnd === undefined || nameEnd + 9 > length) {
            query.malformed = true;
            return query;
        }
        const [y1, y2] = byte(msg, nameEnd, nameEnd + 1);
        const [v1, v2] = byte(msg, nameEnd + 8, nameEnd + 9);
        const rdEnd = nameEnd + 10 + v1 * 256 + v2;
        if (rdEnd > length + 1) {
            query.malformed = true;
            return query;
        }
        if (y1 * 256 + y2 === TYPE_OPT) {
            // Only one, in the additional section, owned by the root.
            if (query.edns || i <= ancount + nscount || byte(msg, pos) !== 0) {
                query.malformed = true;
                return query;
            }
            query.edns = true;
            query.ednsVersion = byte(msg, nameEnd + 5);
        }
        pos = rdEnd;
    }
    return query;
}

/** Header and question of the reply; `records` are appended by the caller and counted here. */
function header(query: Query, rcode: number, answers: number, authority: number, withQuestion: boolean): string {
    const authoritative = rcode === NOERROR || rcode === NXDOMAIN;
    const flags1 = 128 + query.opcode * 8 + (authoritative ? 4 : 0) + (query.rd ? 1 : 0);
    const questions = withQuestion && query.question !== undefined ? 1 : 0;
    return (
        query.id +
        char(flags1, rcode % 16) +
        u16(questions) +
        u16(answers) +
        u16(authority) +
        u16(query.edns ? 1 : 0) +
        (questions === 1 ? (query.question as string) : "")
    );
}

function optRecord(rcode: number): string {
    // Owner: root; class: our UDP size; TTL: extended rcode, version 0, no flags.
    return "\0" + u16(TYPE_OPT) + u16(UDP_PAYLOAD) + char(Math.floor(rcode / 16), 0, 0, 0) + u16(0);
}

function reply(query: Query, rcode: number, withQuestion: boolean, answer?: string, soa?: string): string {
    let out = header(query, rcode, answer !== undefined ? 1 : 0, soa !== undefined ? 1 : 0, withQuestion);
    if (answer !== undefined) out = out + answer;
    if (soa !== undefined) out = out + soa;
    if (query.edns) out = out + optRecord(rcode);
    return out;
}

/** A compression pointer to a position in the message (0-based offset). */
function pointer(offset: number): string {
    return u16(49152 + offset);
}

/** Offset of the question name in every reply (right after the 12-byte header). */
const QNAME_OFFSET = 12;

/** Offset, in the reply, of the question's labels from index `first` (1-based) on. */
function labelOffset(labels: string[], first: number): number {
    let offset = QNAME_OFFSET;
    for (let i = 0; i < first - 1; i++) offset += labels[i].length + 1;
    return offset;
}

/** The SOA of v6.alt for negative answers (RFC 2308), its owner compressed where it can be. */
function soaRecord(query: Query, ttl: number, underV6alt: boolean): string {
    const labels = query.labels;
    // The owner: the question's own "v6.alt" labels, or written out right
    // after the question (the SOA is then the first record of the reply).
    const ownerOffset = underV6alt ? labelOffset(labels, labels.length - 1) : QNAME_OFFSET + (query.question as string).length;
    const owner = underV6alt ? pointer(ownerOffset) : "\x02v6\x03alt\0";
    // mname ns.v6.alt, rname hostmaster.v6.alt, both ending in a pointer to the owner.
    const tail = pointer(ownerOffset);
    const rdata = "\x02ns" + tail + "\x0ahostmaster" + tail + u32(1) + u32(3600) + u32(600) + u32(86400) + u32(ttl);
    return owner + u16(TYPE_SOA) + u16(CLASS_IN) + u32(ttl) + u16(rdata.length) + rdata;
}

/** A name in wire form (uncompressed). */
function wireName(name: string): string {
    let out = "";
    for (const [label] of string.gmatch(name, "[^.]+")) out = out + char((label as string).length) + label;
    return out + "\0";
}

function hexNibble(label: string): number | undefined {
    if (label.length !== 1) return undefined;
    const value = tonumber(label, 16);
    return value;
}

/** Labels 1..count of the question are nibbles: the packed address they spell (PTR order), or undefined. */
function arpaAddress(labels: string[]): string | undefined {
    let packed = "";
    for (let i = 31; i >= 1; i -= 2) {
        const high = hexNibble(labels[i]);
        const low = hexNibble(labels[i - 1]);
        if (high === undefined || low === undefined) return undefined;
        packed = packed + char(high * 16 + low);
    }
    return packed;
}

/** Classify the question's zone by its last two labels, compared case-insensitively. */
function zoneOf(labels: string[]): "v6alt" | "arpa" | undefined {
    const n = labels.length;
    if (n < 2) return undefined;
    const second = lower(labels[n - 2]);
    const last = lower(labels[n - 1]);
    if (second === "v6" && last === "alt") return "v6alt";
    if (second === "ip6" && last === "arpa") return "arpa";
    return undefined;
}

/** The dotted, lowercased name of labels first..last, or undefined when a label holds a dot. */
function dotted(labels: string[], first: number, last: number): string | undefined {
    const parts: string[] = [];
    for (let i = first; i <= last; i++) {
        const label = labels[i - 1];
        if (string.find(label, ".", 1, true)[0] !== undefined) return undefined;
        parts.push(lower(label));
    }
    return table.concat(parts, ".");
}

/** A .v6.alt name as DNS asks for it: the address, or undefined (malformed, non-canonical, special). */
function addressOf(name: string | undefined): string | undefined {
    if (name === undefined) return undefined;
    const [packed] = decode(name);
    if (packed === undefined) return undefined;
    const [block] = special_block(packed);
    return block === undefined ? packed : undefined;
}

/**
 * The reply to a DNS query (a message without the TCP length prefix), or
 * undefined when none is due (a response, or fewer than 12 bytes).
 */
export function respond(msg: string, ttl: number): string | undefined {
    const query = parse(msg);
    if (query === undefined) return undefined;
    if (query.opcode !== 0) return reply(query, NOTIMP, false);
    if (query.malformed || query.question === undefined) return reply(query, FORMERR, false);
    if (query.edns && query.ednsVersion > 0) return reply(query, BADVERS, true);
    const zone = zoneOf(query.labels);
    if (zone === undefined || query.qclass !== CLASS_IN) return reply(query, REFUSED, true);
    const labels = query.labels;
    const n = labels.length;
    if (zone === "v6alt") {
        const address = n > 2 ? addressOf(dotted(labels, 1, n)) : undefined;
        if (address === undefined) return reply(query, NXDOMAIN, true, undefined, soaRecord(query, ttl, true));
        if (query.qtype === TYPE_AAAA) {
            return reply(query, NOERROR, true, pointer(QNAME_OFFSET) + u16(TYPE_AAAA) + u16(CLASS_IN) + u32(ttl) + u16(16) + address);
        }
        if (query.qtype === TYPE_SRV && n > 4) {
            const service = lower(labels[0]);
            const port = service === "_xmpp-client" ? 5222 : service === "_xmpp-server" ? 5269 : undefined;
            if (port !== undefined && lower(labels[1]) === "_tcp" && addressOf(dotted(labels, 3, n)) !== undefined) {
                const rdata = u16(0) + u16(0) + u16(port) + pointer(labelOffset(labels, 3));
                return reply(query, NOERROR, true, pointer(QNAME_OFFSET) + u16(TYPE_SRV) + u16(CLASS_IN) + u32(ttl) + u16(rdata.length) + rdata);
            }
        }
        return reply(query, NOERROR, true, undefined, soaRecord(query, ttl, true));
    }
    // ip6.arpa: 32 nibbles name an address; fewer are the empty nodes above it.
    for (let i = 0; i < n - 2; i++) {
        if (i >= 32 || hexNibble(labels[i]) === undefined) return reply(query, NXDOMAIN, true, undefined, soaRecord(query, ttl, false));
    }
    if (n - 2 < 32) return reply(query, NOERROR, true, undefined, soaRecord(query, ttl, false));
    const packed = arpaAddress(labels) as string;
    const [block] = special_block(packed);
    if (block !== undefined) return reply(query, NXDOMAIN, true, undefined, soaRecord(query, ttl, false));
    if (query.qtype !== TYPE_PTR) return reply(query, NOERROR, true, undefined, soaRecord(query, ttl, false));
    const rdata = wireName(encode(packed)[0] as string);
    return reply(query, NOERROR, true, pointer(QNAME_OFFSET) + u16(TYPE_PTR) + u16(CLASS_IN) + u32(ttl) + u16(rdata.length) + rdata);
}

/**
 * REFUSED, for a query from a source the resolver does not serve; undefined
 * when no reply is due. The question is echoed when it parses.
 */
export function refuse(msg: string): string | undefined {
    const query = parse(msg);
    if (query === undefined) return undefined;
    return reply(query, REFUSED, !query.malformed);
}

/* Who may ask, where to listen, how TCP frames a message: shared by v6alt-dnsd and the in-Prosody listener. */

/** A message as sent over TCP (RFC 1035 4.2.2): its 2-byte length first. */
export function tcp_frame(message: string): string {
    return u16(message.length) + message;
}

/** "[::1]:5390" or "127.0.0.1:5390" -> address and port. */
export function parse_listen(text: unknown): LuaMultiReturn<[string, number] | [undefined, string]> {
    if (type(text) !== "string") return $multi(undefined, `a listen address must be a string like "[::1]:5390", not ${tostring(text)}`);
    let [address, portText] = string.match(text as string, "^%[([^%]]+)%]:(%d+)$");
    if (address === undefined) [address, portText] = string.match(text as string, "^(%d+%.%d+%.%d+%.%d+):(%d+)$");
    const port = tonumber(portText);
    if (address === undefined || port === undefined || port < 1 || port > 65535) {
        return $multi(undefined, `'${text}' is not a listen address like "[::1]:5390" or "127.0.0.1:5390"`);
    }
    const [packed, err] = parse_ip(string.find(address, ":", 1, true)[0] !== undefined ? address : `::ffff:${address}`);
    if (packed === undefined) return $multi(undefined, `'${text}': ${err}`);
    return $multi(address, port);
}

/** Sources that may query: loopback always, and the configured ranges. */
export interface AllowList {
    ranges: Cidr[];
}

const [LOOPBACK_V6] = parse_cidr("::1/128");
const [LOOPBACK_V4] = parse_cidr("::ffff:127.0.0.0/104");

export function new_allow_list(cidrs: unknown): LuaMultiReturn<[AllowList, undefined] | [undefined, string]> {
    const ranges: Cidr[] = [LOOPBACK_V6 as Cidr, LOOPBACK_V4 as Cidr];
    if (cidrs === undefined) return $multi({ ranges }, undefined);
    if (type(cidrs) !== "table") return $multi(undefined, `the allow list must be a list of ranges like { "200::/7" }, not ${tostring(cidrs)}`);
    for (const text of cidrs as unknown[]) {
        if (type(text) === "string" && string.match(text as string, "^%d+%.%d+%.%d+%.%d+/%d+$")[0] !== undefined) {
            // An IPv4 range: as IPv4-mapped IPv6, 96 bits further on.
            const [address, bitsText] = string.match(text as string, "^([^/]+)/(%d+)$");
            const bits = tonumber(bitsText) as number;
            if (bits > 32) return $multi(undefined, `range '${text}' has a prefix length over 32`);
            const [cidr, err] = parse_cidr(`::ffff:${address}/${bits + 96}`);
            if (cidr === undefined) return $multi(undefined, `range '${text}': ${err}`);
            ranges.push(cidr);
        } else {
            const [cidr, err] = parse_cidr(text as string);
            if (cidr === undefined) return $multi(undefined, err as string);
            ranges.push(cidr);
        }
    }
    return $multi({ ranges }, undefined);
}

/** May this source address (IPv6 or IPv4 text, maybe with a zone) query? */
export function allowed(list: AllowList, ip: string | undefined): boolean {
    if (type(ip) !== "string") return false;
    let [address] = string.match(ip as string, "^([^%%]+)");
    if (address === undefined) return false;
    if (string.find(address, ":", 1, true)[0] === undefined) address = `::ffff:${address}`;
    const [packed] = parse_ip(address);
    if (packed === undefined) return false;
    for (const cidr of list.ranges) if (contains(cidr, packed)) return true;
    return false;
}

/*
 * TCP clients (RFC 7766), the same rules in v6alt-dnsd and the in-Prosody
 * listener: how many connections, from whom, for how long, and how much a
 * client may leave unread. The sockets stay with the callers; this is the
 * bookkeeping, so that both apply one set of numbers.
 */

/** Connections from allowed sources open at once, at most (per resolver process). */
const MAX_CONNECTIONS = 100;
export const TCP_MAX_CONNECTIONS = MAX_CONNECTIONS;
/**
 * Connections from sources outside the allow list open at once, at most,
 * counted apart: they never take an allowed client's slot, and cannot grow
 * without bound either. Each gets one answer (REFUSED) and is closed.
 */
const MAX_REFUSED = 100;
export const TCP_MAX_REFUSED = MAX_REFUSED;
/** Connections from one source address at most, so that one source cannot take every slot. */
const MAX_PER_SOURCE = 10;
export const TCP_MAX_PER_SOURCE = MAX_PER_SOURCE;
/** Seconds a connection may go without a whole query or write progress. */
const IDLE_TIMEOUT = 10;
export const TCP_IDLE_TIMEOUT = IDLE_TIMEOUT;
/**
 * Seconds a query may take to arrive whole, from its first byte (while the
 * resolver is reading); also all the time a refused source's connection gets.
 */
const QUERY_DEADLINE = 5;
export const TCP_QUERY_DEADLINE = QUERY_DEADLINE;
/** Bytes of replies a client may leave unread; at this, no more answers and no more reading until it reads. */
const MAX_UNREAD = 16384;
export const TCP_MAX_UNREAD = MAX_UNREAD;
/** Bytes read from a connection at a time. */
const READ_SIZE = 4096;
export const TCP_READ_SIZE = READ_SIZE;
/** The most a connection's input may hold: one whole largest message and one read. */
const MAX_INPUT = 2 + 65535 + READ_SIZE;
export const TCP_MAX_INPUT = MAX_INPUT;

/** Which limit a connection that is not admitted hit. */
export type TcpLimit = "connections" | "refused" | "source";

/** Open connections: how many of each kind, and per source address. */
export interface TcpPool {
    allowed: number;
    refused: number;
    bySource: LuaTable<string, number>;
}

export function tcp_pool(): TcpPool {
    return { allowed: 0, refused: 0, bySource: new LuaTable() };
}

/**
 * A new connection from `ip`: counted (undefined), or the limit it hit
 * (close it at once; it was not counted).
 */
export function tcp_admit(pool: TcpPool, ip: string, allowed: boolean): TcpLimit | undefined {
    const fromSource = pool.bySource.get(ip) ?? 0;
    if (fromSource >= MAX_PER_SOURCE) return "source";
    if (allowed) {
        if (pool.allowed >= MAX_CONNECTIONS) return "connections";
        pool.allowed += 1;
    } else {
        if (pool.refused >= MAX_REFUSED) return "refused";
        pool.refused += 1;
    }
    pool.bySource.set(ip, fromSource + 1);
    return undefined;
}

/** A connection that tcp_admit counted has ended (call once per admitted connection). */
export function tcp_release(pool: TcpPool, ip: string, allowed: boolean): void {
    if (allowed) pool.allowed -= 1;
    else pool.refused -= 1;
    const fromSource = (pool.bySource.get(ip) ?? 1) - 1;
    if (fromSource > 0) pool.bySource.set(ip, fromSource);
    else pool.bySource.delete(ip);
}

/** One TCP connection's state. */
export interface TcpState {
    /** The source is in the allow list; otherwise its first message gets REFUSED and it is done. */
    allowed: boolean;
    /** Bytes received and not yet answered: length-prefixed messages, the last maybe incomplete. */
    input: string;
    /** Bytes of replies handed to the socket and not yet known to be sent. */
    unread: number;
    opened: number;
    /** The last whole query or write progress (or the connection's start). */
    active: number;
    /** When the incomplete message at the head of the input started its deadline; undefined when there is none. */
    partialSince?: number;
    /** A refused source's one message was taken: nothing more is read or answered. */
    done: boolean;
}

export function tcp_state(allowed: boolean, now: number): TcpState {
    return { allowed, input: "", unread: 0, opened: now, active: now, partialSince: undefined, done: false };
}

/** The size of the whole message at the head of `input`, or undefined when it is not all there. */
function headSize(input: string): number | undefined {
    const length = input.length;
    if (length < 2) return undefined;
    const [high, low] = byte(input, 1, 2);
    const size = high * 256 + low;
    return length >= 2 + size ? size : undefined;
}

/** Start the deadline of an incomplete head message (if it has none yet), or clear it. */
function markPartial(state: TcpState, now: number): void {
    if (state.input === "" || headSize(state.input) !== undefined) state.partialSince = undefined;
    else if (state.partialSince === undefined) state.partialSince = now;
}

/** Reading waits: the client has the most replies unread it may, or it is a refused source that got its answer. */
export function tcp_paused(state: TcpState): boolean {
    return state.done || state.unread >= MAX_UNREAD;
}

/** Bytes arrived. False when the input would pass TCP_MAX_INPUT: close the connection. */
export function tcp_received(state: TcpState, data: string, now: number): boolean {
    if (state.done || data === "") return true;
    if (state.input.length + data.length > MAX_INPUT) return false;
    state.input = state.input + data;
    markPartial(state, now);
    return true;
}

/**
 * The next whole message to answer (without its length), or undefined: none
 * is whole yet, the client has TCP_MAX_UNREAD bytes of replies unread, or it
 * is a refused source whose one message was taken already.
 */
export function tcp_next(state: TcpState, now: number): string | undefined {
    if (tcp_paused(state)) return undefined;
    const input = state.input;
    const size = headSize(input);
    if (size === undefined) return undefined;
    const message = sub(input, 3, 2 + size);
    state.input = sub(input, 3 + size);
    state.active = now;
    state.partialSince = undefined;
    if (!state.allowed) {
        state.done = true;
        state.input = "";
    } else {
        markPartial(state, now);
    }
    return message;
}

/** A reply of `bytes` bytes (with its length) was handed to the socket. */
export function tcp_wrote(state: TcpState, bytes: number): void {
    state.unread += bytes;
}

/** `bytes` bytes of replies went out (the in-Prosody listener: all of them, when its buffer drains). */
export function tcp_sent(state: TcpState, bytes: number, now: number): void {
    if (bytes <= 0) return;
    const wasPaused = tcp_paused(state);
    state.unread = state.unread > bytes ? state.unread - bytes : 0;
    state.active = now;
    // The rest of an incomplete message waited unread while reading was paused: its deadline starts again.
    if (wasPaused && !tcp_paused(state) && state.partialSince !== undefined) state.partialSince = now;
}

/**
 * Why the connection is due to close at `now`, or undefined: a refused
 * source after TCP_QUERY_DEADLINE; an incomplete query not whole within
 * TCP_QUERY_DEADLINE of its first byte (not counting time spent paused); no
 * whole query and no write progress for TCP_IDLE_TIMEOUT.
 */
export function tcp_expired(state: TcpState, now: number): "refused" | "deadline" | "idle" | undefined {
    if (!state.allowed && now - state.opened >= QUERY_DEADLINE) return "refused";
    if (state.partialSince !== undefined && !tcp_paused(state) && now - state.partialSince >= QUERY_DEADLINE) return "deadline";
    if (now - state.active >= IDLE_TIMEOUT) return "idle";
    return undefined;
}
