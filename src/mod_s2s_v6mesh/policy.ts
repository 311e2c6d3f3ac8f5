/**
 * Trust and range policy (SPEC section 3): which v6.alt peers may be reached, with
 * or without TLS, and whose certificates count as valid. Pure logic: no
 * Prosody imports, so it is tested directly.
 */
import { format_ip, parse_ip } from "./v6alt";

export interface Cidr {
    /** The range as the operator wrote it, normalised ("200::/7"). */
    text: string;
    /** Network address, 16 packed bytes with the host bits cleared. */
    network: string;
    bits: number;
    /** For contains(): the network's whole bytes, and the byte after them masked to its prefix bits (with the unit that masks it), if any. */
    whole: string;
    part: number | undefined;
    unit: number;
}

export interface RangeSettings {
    cidr: Cidr;
    /** false: refuse this range both ways (block a peer by address). */
    allow: boolean;
    use_tls: boolean;
    /** undefined: inherit s2s_v6mesh_trust_all_certs */
    trust_all_certs: boolean | undefined;
}

export interface Decision {
    /** Peer address, RFC 5952 text. */
    address: string;
    /** The most specific configured range containing the address, if any. */
    range: RangeSettings | undefined;
    use_tls: boolean;
    trust_all_certs: boolean;
    /** Why the address is refused (blocked, special-purpose or our own), if it is. */
    refused: string | undefined;
    /** The refusal comes from an allow = false range. */
    blocked: boolean;
    /** What kind of refusal it is, for counting (undefined when not refused). */
    refusal_kind: "blocked" | "own-address" | "special-purpose" | undefined;
}

export interface Policy {
    trust_all_certs: boolean;
    /** Most specific first. */
    ranges: RangeSettings[];
    /** Packed addresses of this machine -> what they are, for log lines. */
    own: LuaTable<string, string>;
}

type CidrResult = LuaMultiReturn<[Cidr, undefined] | [undefined, string]>;

/** Mask a packed address to its first `bits` bits. */
function maskTo(packed: string, bits: number): string {
    const whole = Math.floor(bits / 8);
    const rest = bits % 8;
    if (whole >= 16) return packed;
    let masked = string.sub(packed, 1, whole);
    let tailStart = whole + 1;
    if (rest > 0) {
        const unit = 2 ** (8 - rest);
        const b = string.byte(packed, whole + 1);
        masked = masked + string.char(Math.floor(b / unit) * unit);
        tailStart = whole + 2;
    }
    return masked + string.rep(string.char(0), 16 - tailStart + 1);
}

/** "200::/7" -> Cidr. A bare address is a /128. */
export function parse_cidr(text: string): CidrResult {
    if (type(text) !== "string") return $multi(undefined, `range ${tostring(text)} must be a string like "200::/7"`);
    const [addressText, bitsText] = string.match(text, "^([^/]+)/(%d+)$");
    const address = addressText === undefined ? text : addressText;
    if (addressText === undefined && string.find(text, "/", 1, true)[0] !== undefined) {
        return $multi(undefined, `range '${text}' needs a prefix length from 0 to 128 after '/'`);
    }
    const bits = bitsText === undefined ? 128 : (tonumber(bitsText) as number);
    if (bits > 128) return $multi(undefined, `range '${text}' has a prefix length over 128`);
    const [packed, err] = parse_ip(address);
    if (packed === undefined) return $multi(undefined, `range '${text}': ${err}`);
    const network = maskTo(packed, bits);
    const wholeBytes = Math.floor(bits / 8);
    const partBits = bits % 8;
    const unit = 2 ** (8 - partBits);
    return $multi(
        {
            text: `${format_ip(network)}/${bits}`,
            network,
            bits,
            whole: string.sub(network, 1, wholeBytes),
            part: partBits > 0 ? string.byte(network, wholeBytes + 1) : undefined,
            unit,
        },
        undefined
    );
}

/** Is the (packed) address inside the range? No new strings but one prefix. */
export function contains(cidr: Cidr, packed: string): boolean {
    const whole = cidr.whole;
    if (whole !== "" && string.sub(packed, 1, whole.length) !== whole) return false;
    const part = cidr.part;
    if (part === undefined) return true;
    const unit = cidr.unit;
    return Math.floor(string.byte(packed, whole.length + 1) / unit) * unit === part;
}

/** cidr lies entirely inside block. */
function within(cidr: Cidr, block: Cidr): boolean {
    return cidr.bits >= block.bits && contains(block, cidr.network);
}

interface SpecialBlock {
    cidr: Cidr;
    what: string;
}

const SPECIAL_BLOCKS: SpecialBlock[] = [];
for (const [text, what] of [
    ["::/128", "the unspecified address"],
    ["::1/128", "the loopback address"],
    ["::ffff:0:0/96", "an IPv4-mapped address"],
    ["::/96", "an IPv4-compatible address"],
    ["64:ff9b::/96", "a NAT64 address"],
    ["64:ff9b:1::/48", "a local-use NAT64 address"],
    ["::ffff:0:0:0/96", "an IPv4-translated address"],
    ["2002::/16", "a 6to4 address"],
    ["2001::/32", "a Teredo address"],
    ["ff00::/8", "a multicast address"],
    ["fe80::/10", "a link-local address"],
] as [string, string][]) {
    const [cidr] = parse_cidr(text);
    SPECIAL_BLOCKS.push({ cidr: cidr as Cidr, what: `${what} (${text})` });
}

/**
 * Prefixes no range may name: a .v6.alt name carries no zone index, so a
 * link-local peer can be neither reached nor told apart by interface, and
 * nothing connects to a multicast address over TCP.
 */
const UNUSABLE_BLOCKS: SpecialBlock[] = [];
for (const [text, why] of [
    ["fe80::/10", "is link-local: a .v6.alt name carries no zone index (%eth0), so no connection to or from it can be matched to a name"],
    ["ff00::/8", "is multicast: no s2s connection can use it"],
] as [string, string][]) {
    const [cidr] = parse_cidr(text);
    UNUSABLE_BLOCKS.push({ cidr: cidr as Cidr, what: why });
}

/** The special-purpose block an address falls in, if any. */
export function special_block(packed: string): LuaMultiReturn<[Cidr, string] | [undefined, undefined]> {
    for (const block of SPECIAL_BLOCKS) {
        if (contains(block.cidr, packed)) return $multi(block.cidr, block.what);
    }
    return $multi(undefined, undefined);
}

function describeValue(value: unknown): string {
    return type(value) === "string" ? `"${value}"` : `${tostring(value)} (a ${type(value)})`;
}

type AnyTable = LuaTable<AnyNotNil, unknown>;
type PolicyResult = LuaMultiReturn<[Policy, undefined] | [undefined, string]>;

/**
 * Validate the options and build a policy. Any bad entry is an error: a typo
 * in a range that was meant to restrict trust must not silently widen it.
 */
export function new_policy(trustAllCerts: unknown, ranges: unknown): PolicyResult {
    if (type(trustAllCerts) !== "boolean") {
        return $multi(undefined, `s2s_v6mesh_trust_all_certs must be true or false, not ${describeValue(trustAllCerts)}`);
    }
    if (ranges === undefined) ranges = {};
    if (type(ranges) !== "table") {
        return $multi(undefined, `s2s_v6mesh_ranges must be a table like { ["200::/7"] = { use_tls = true } }, not ${describeValue(ranges)}`);
    }
    const settings: RangeSettings[] = [];
    const spelledAs = new LuaTable<string, string>();
    for (const [key, value] of ranges as AnyTable) {
        const where = `s2s_v6mesh_ranges[${describeValue(key)}]`;
        if (type(key) !== "string") return $multi(undefined, `${where}: the key must be a CIDR string like "200::/7"`);
        const [cidr, err] = parse_cidr(key as string);
        if (cidr === undefined) return $multi(undefined, `${where}: ${err}`);
        if (type(value) !== "table") {
            return $multi(undefined, `${where} must be a table like { use_tls = true, trust_all_certs = true }, not ${describeValue(value)}`);
        }
        for (const block of UNUSABLE_BLOCKS) {
            if (within(cidr, block.cidr)) return $multi(undefined, `${where}: ${cidr.text} ${block.what}; remove this entry`);
        }
        const entry: RangeSettings = { cidr, allow: true, use_tls: true, trust_all_certs: undefined };
        for (const [field, fieldValue] of value as AnyTable) {
            if (field !== "allow" && field !== "use_tls" && field !== "trust_all_certs") {
                return $multi(undefined, `${where}: unknown setting ${describeValue(field)} (known: allow, use_tls, trust_all_certs)`);
            }
            if (type(fieldValue) !== "boolean") {
                return $multi(undefined, `${where}.${field as string} must be true or false, not ${describeValue(fieldValue)}`);
            }
            if (field === "allow") entry.allow = fieldValue as boolean;
            else if (field === "use_tls") entry.use_tls = fieldValue as boolean;
            else entry.trust_all_certs = fieldValue as boolean;
        }
        const twin = spelledAs.get(cidr.text);
        if (twin !== undefined) {
            return $multi(undefined, `${where} and s2s_v6mesh_ranges[${describeValue(twin)}] are the same range ${cidr.text}`);
        }
        spelledAs.set(cidr.text, key as string);
        settings.push(entry);
    }
    table.sort(settings, (a, b) => a.cidr.bits > b.cidr.bits || (a.cidr.bits === b.cidr.bits && a.cidr.text < b.cidr.text));
    return $multi({ trust_all_certs: trustAllCerts as boolean, ranges: settings, own: new LuaTable<string, string>() }, undefined);
}


/** Mark an address as this machine's own; `what` says so in refusals. */
export function set_own_address(policy: Policy, packed: string, what: string): void {
    policy.own.set(packed, what);
}

/** What the policy says about talking to this (packed) address. */
export function decide(policy: Policy, packed: string): Decision {
    let range: RangeSettings | undefined;
    for (const candidate of policy.ranges) {
        if (contains(candidate.cidr, packed)) {
            range = candidate;
            break;
        }
    }
    let refused: string | undefined;
    let kind: Decision["refusal_kind"];
    const own = policy.own.get(packed);
    if (range !== undefined && !range.allow) {
        refused = `blocked by s2s_v6mesh_ranges entry ${range.cidr.text} (allow = false)`;
        kind = "blocked";
    } else if (own !== undefined) {
        // Only a range naming exactly this address lets us talk to ourselves.
        if (range === undefined || range.cidr.bits < 128) {
            refused = own;
            kind = "own-address";
        }
    } else {
        const [block, what] = special_block(packed);
        // A special-purpose block is allowed only by a range that lies inside
        // it (say "fe80::/10" or "::1/128"), never by a wide one like "::/0".
        if (block !== undefined && (range === undefined || !within(range.cidr, block))) {
            refused = what;
            kind = "special-purpose";
        }
    }
    let trust = policy.trust_all_certs;
    if (range !== undefined && range.trust_all_certs !== undefined) trust = range.trust_all_certs;
    return {
        address: format_ip(packed) as string,
        range,
        use_tls: range === undefined ? true : range.use_tls,
        trust_all_certs: trust,
        refused,
        blocked: range !== undefined && !range.allow,
        refusal_kind: kind,
    };
}

/** One line for operators: "range 200::/7 (use_tls = false, trust_all_certs = true)". */
export function describe(decision: Decision): string {
    const where = decision.range === undefined ? "no configured range (defaults)" : `range ${decision.range.cidr.text}`;
    let line = decision.blocked
        ? `${where}: allow = false`
        : `${where}: use_tls = ${tostring(decision.use_tls)}, trust_all_certs = ${tostring(decision.trust_all_certs)}`;
    if (decision.refused !== undefined) line = `${line}; refused: ${decision.refused}`;
    return line;
}
