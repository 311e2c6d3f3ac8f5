/**
 * mod_s2s_v6mesh: DNS-free server-to-server federation for .v6.alt names.
 *
 * Loaded once for the whole process (SPEC 3.1): it hooks the events of every
 * host, VirtualHosts and Components alike, whether or not the host lists the
 * module, and looks up the settings of the host an event belongs to.
 * - route/remote: a stanza for *.v6.alt is checked before mod_s2s sees it;
 *   bad names and forbidden addresses bounce at once.
 * - outgoing connections go to the address the name encodes (compat.ts),
 *   checked again when the connection is made.
 * - a peer claiming a .v6.alt name must connect from that address.
 * - where the policy says so, the peer's certificate counts as valid.
 * - every stanza a peer sends to a local host is held to that host's settings.
 */
import type { Decision, Policy } from "./policy";
import type { RoutingState } from "./compat";

type V6altLib = typeof import("./v6alt");
type PolicyLib = typeof import("./policy");
type ShellLib = typeof import("./shell");
type DnsLib = typeof import("./dns");
type DnsListenerLib = typeof import("./dns_listener");
type CompatLib = typeof import("./compat");
type StanzaLib = typeof import("prosody.util.stanza");
type NetLib = typeof import("prosody.util.net");
type JidLib = typeof import("prosody.util.jid");
type EncodingsLib = typeof import("prosody.util.encodings");
type NetServerLib = typeof import("prosody.net.server");

module.set_global();

// Every (re)load reads every file of the module afresh: a reload must pick up
// new code of the codec and the policy too, not only of this file.
const FILES = ["v6alt", "policy", "shell", "dns", "dns_listener", "compat"];
const loaded = (_G as unknown as { package: { loaded: LuaTable<string, unknown> } }).package.loaded;
for (const file of FILES) loaded.delete(`mod_s2s_v6mesh.${file}`);
function loadFile<T>(file: string): T {
    const lib = require(`mod_s2s_v6mesh.${file}`);
    return lib as T;
}
// Without compat nothing can be hooked: a broken compat.lua stops the load.
const compat = loadFile<CompatLib>("compat");
const st = compat.require_lib<StanzaLib>("util.stanza");
const netserver = compat.require_lib<NetServerLib>("net.server");
const socketlib = require("socket") as typeof import("socket");
const netutil = compat.require_lib<NetLib>("util.net");
const jid = compat.require_lib<JidLib>("util.jid");
const idnaToAscii = compat.require_lib<EncodingsLib>("util.encodings").idna.to_ascii;

/**
 * Any other file that does not load, or a bad option, leaves the module
 * loaded but closed: every stanza to a .v6.alt name bounces with the reason
 * and nothing goes to DNS, until it is fixed and the module reloaded.
 */
let failure: string | undefined;
function loadOrFail<T>(file: string): T {
    const [ok, lib] = pcall(loadFile, file);
    if (ok) return lib as T;
    // Lua's loader error spans lines ("error loading module ...:\n\tpolicy.lua:216: ...").
    const [why] = string.gsub(tostring(lib), "%s+", " ");
    failure = failure ?? `${file}.lua does not load: ${why}`;
    return undefined as unknown as T;
}
const v6alt = loadOrFail<V6altLib>("v6alt");
const policies = loadOrFail<PolicyLib>("policy");
const shell = loadOrFail<ShellLib>("shell");
const dns = loadOrFail<DnsLib>("dns");
const dnsListener = loadOrFail<DnsListenerLib>("dns_listener");

const S2S_PORT = 5269;

/**
 * Process-wide routing state (compat.ts), shared across reloads of the
 * module, so that a new instance takes over what the old one patched.
 */
const routing = module.shared("routing") as unknown as RoutingState & {
    /** Set while a reload is under way (or failed): why .v6.alt routing is closed. */
    closed?: string;
    /** Removes the raw handlers that keep routing closed. */
    unguard?: LuaTable<number, (this: void) => void>;
};

/* ---------------------------------------------------------------------- */
/* Metrics: core/statsmanager, served by mod_http_openmetrics               */

const metricConnections = module.metric("counter", "connections", "", "Outgoing s2s connections to .v6.alt names, by outcome", ["host", "outcome"]);
const metricTrusted = module.metric("counter", "trusted", "", "Certificates of .v6.alt peers counted as valid by their address, by reason", ["host", "direction", "reason"]);
const metricRefusals = module.metric("counter", "refusals", "", "Stanzas, connections and streams refused, by reason", ["host", "reason"]);
const metricDns = module.metric("counter", "dns_queries", "", "DNS queries from the in-Prosody listener, by response code", ["rcode"]);

/** Why something was refused, as the refusals metric counts it. */
type RefusalReason =
    | "malformed"
    | "special-purpose"
    | "own-address"
    | "blocked"
    | "wrong-address"
    | "plaintext-piggyback"
    | "no-source-address"
    | "not-delivered"
    | "closed";

/** The same counts for `v6alt status` (statistics may be off): reason -> refusals since load. */
const refusalCounts = new LuaTable<string, number>();

function countRefusal(host: string | undefined, reason: RefusalReason): void {
    metricRefusals.with_labels(host ?? ":unknown", reason).add(1);
    refusalCounts.set(reason, (refusalCounts.get(reason) ?? 0) + 1);
}

/* ---------------------------------------------------------------------- */
/* Names as the layers below read them (SPEC 3.2)                           */

/**
 * The .v6.alt name that `name` is once Prosody's DNS layer has read it
 * (IDNA, trailing dots, case), or undefined when it is none. Every check
 * point asks this, never a suffix test of its own. Without the codec (it did
 * not load) anything that might be one counts as one.
 */
function meshName(name: string | undefined): string | undefined {
    if (name === undefined) return undefined;
    if (v6alt !== undefined) return v6alt.mesh_name(name, idnaToAscii);
    const lowered = string.lower(name);
    return string.find(lowered, "v6", 1, true)[0] !== undefined && string.find(lowered, "alt", 1, true)[0] !== undefined ? name : undefined;
}

/** How an operator reads a name the module refused: as written, and as DNS would see it. */
function spelled(name: string, read: string): string {
    return name === read ? name : `${name} (read as ${read})`;
}

/** The last gate: no resolver of the process is ever asked a name under v6.alt. */
const dnsGate: import("./compat").DnsGate = {
    refusal(name) {
        if (!(v6alt !== undefined && v6alt.reaches_v6alt(name)) && meshName(name) === undefined) return undefined;
        return `mod_s2s_v6mesh: ${name} is a .v6.alt name, which is never looked up in DNS`;
    },
    log(where, name, why) {
        module.log("warn", "Refused the %s for %s: %s", where, name, why);
    },
};

/* ---------------------------------------------------------------------- */
/* Settings, per host                                                       */

interface HostSettings {
    /** Why this host's .v6.alt federation is closed (a bad option of its own), if it is. */
    closed?: string;
    policy: Policy;
    lax: boolean;
    /** Some range has allow = false: incoming streams need an address check. */
    blocks: boolean;
    /** Packed destination -> the policy's refusal, or false (see refusalFor). */
    refusals: LuaTable<string, Decision | false>;
    refusalCount: number;
}

/** Packed address of this machine -> what it is, for refusals (shared by every policy). */
const ownAddresses = new LuaTable<string, string>();
const settingsByHost = new LuaTable<string, HostSettings>();

/**
 * Changes whenever a host's settings or the own addresses change: cached
 * refusals and the delivery verdicts kept on sessions are valid for one epoch.
 */
let epoch: object = {};

/** Read and validate this module's options for one host; a bad value is an error. */
function readSettings(m: ProsodyModule): HostSettings {
    const trust = m.get_option_boolean("s2s_v6mesh_trust_all_certs", true);
    const lax = m.get_option_boolean("s2s_v6mesh_lax_names", false);
    const [policy, err] = policies.new_policy(
        trust === undefined ? m.get_option("s2s_v6mesh_trust_all_certs") : trust,
        m.get_option("s2s_v6mesh_ranges", {})
    );
    if (policy === undefined || lax === undefined) {
        const why = err ?? `s2s_v6mesh_lax_names must be true or false, not ${tostring(m.get_option("s2s_v6mesh_lax_names"))}`;
        error(`${m.host === "*" ? "" : `${m.host}: `}${why}`, 0);
    }
    policy.own = ownAddresses;
    let blocks = false;
    for (const range of policy.ranges) if (!range.allow) blocks = true;
    return { policy, lax, blocks, refusals: new LuaTable(), refusalCount: 0 };
}

/**
 * One host's settings, read and validated as at load whenever the host
 * comes (at load, activated later, or reloaded): a bad option of its own
 * closes that host's .v6.alt federation, never falls back to looser ones.
 */
function readHostSettings(host: string): HostSettings {
    const [ok, result] = pcall(readSettings, module.context(host));
    if (ok) return result as HostSettings;
    const why = `Invalid configuration for ${tostring(result)}`;
    module.log("error", "%s; .v6.alt federation of %s is closed until this is fixed and the module reloaded", why, host);
    return { closed: why, policy: globalSettings.policy, lax: false, blocks: false, refusals: new LuaTable(), refusalCount: 0 };
}

/** The in-Prosody .v6.alt resolver (SPEC section 6): global options only. */
interface DnsSettings {
    listen: [string, number][];
    allow: import("./dns").AllowList;
    ttl: number;
}

function readDnsSettings(): DnsSettings {
    const listen: [string, number][] = [];
    const listenOption = module.get_option("s2s_v6mesh_dns_listen", {});
    if (type(listenOption) !== "table") error(`s2s_v6mesh_dns_listen must be a list like { "[::1]:5390" }, not ${tostring(listenOption)}`, 0);
    for (const text of listenOption as unknown[]) {
        const [address, port] = dns.parse_listen(text);
        if (address === undefined) error(`s2s_v6mesh_dns_listen: ${port}`, 0);
        listen.push([address, port as number]);
    }
    const [allow, err] = dns.new_allow_list(module.get_option("s2s_v6mesh_dns_allow", {}));
    if (allow === undefined) error(`s2s_v6mesh_dns_allow: ${err}`, 0);
    const ttl = module.get_option("s2s_v6mesh_dns_ttl", 3600);
    if (type(ttl) !== "number" || (ttl as number) < 0 || (ttl as number) > 2147483647 || (ttl as number) % 1 !== 0) {
        error(`s2s_v6mesh_dns_ttl must be a whole number of seconds, not ${tostring(ttl)}`, 0);
    }
    return { listen, allow, ttl: ttl as number };
}

let globalSettings = undefined as unknown as HostSettings;
let dnsSettings = undefined as unknown as DnsSettings;
if (failure === undefined) {
    const [ok, result] = pcall(readSettings, module);
    if (ok) {
        globalSettings = result as HostSettings;
        for (const [host] of prosody.hosts) settingsByHost.set(host, readHostSettings(host));
    } else {
        failure = `Invalid configuration: ${tostring(result)}`;
    }
}
if (failure === undefined) {
    const [ok, result] = pcall(readDnsSettings);
    if (ok) dnsSettings = result as DnsSettings;
    else failure = `Invalid configuration: ${tostring(result)}`;
}

function settingsFor(host: string | undefined): HostSettings {
    return (host !== undefined && settingsByHost.get(host)) || globalSettings;
}

/** The policy's decision when it refuses this destination, else false; remembered per host and epoch. */
function refusalFor(settings: HostSettings, packed: string): Decision | false {
    const known = settings.refusals.get(packed);
    if (known !== undefined) return known;
    const decision = policies.decide(settings.policy, packed);
    const refused = decision.refused === undefined ? false : decision;
    if (settings.refusalCount >= 4096) {
        settings.refusals = new LuaTable();
        settings.refusalCount = 0;
    }
    settings.refusals.set(packed, refused);
    settings.refusalCount += 1;
    return refused;
}

function newEpoch(): void {
    epoch = {};
    for (const [, settings] of settingsByHost) {
        settings.refusals = new LuaTable();
        settings.refusalCount = 0;
    }
    globalSettings.refusals = new LuaTable();
    globalSettings.refusalCount = 0;
}

/* ---------------------------------------------------------------------- */
/* Own addresses: every address of the machine                              */

function machineAddresses(): LuaTable<string, boolean> {
    const found = new LuaTable<string, boolean>();
    const [ok, list] = pcall(netutil.local_addresses, "ipv6", true);
    if (ok && list !== undefined) {
        for (const text of list as string[]) {
            // Link-local addresses come with a zone ("fe80::1%eth0").
            const [address] = string.match(text, "^([^%%]+)");
            const [packed] = v6alt.parse_ip(address as string);
            if (packed !== undefined) found.set(packed, true);
        }
    }
    return found;
}

/** The machine's addresses (packed) as refreshOwnAddresses last read them. */
let onMachine = new LuaTable<string, boolean>();

/** Recompute the own addresses; a change starts a new epoch. */
function refreshOwnAddresses(): void {
    const fresh = new LuaTable<string, string>();
    onMachine = machineAddresses();
    for (const [packed] of onMachine) fresh.set(packed, "an address of this machine");
    for (const [host] of prosody.hosts) {
        const name = meshName(host);
        if (name !== undefined) {
            const [packed] = v6alt.decode(name, true);
            if (packed !== undefined && fresh.get(packed) !== `the address of this server's own host ${host}`) {
                fresh.set(packed, `the address of this server's own host ${host}`);
            }
        }
    }
    let changed = false;
    for (const [packed, what] of fresh) if (ownAddresses.get(packed) !== what) changed = true;
    for (const [packed] of ownAddresses) if (fresh.get(packed) === undefined) changed = true;
    if (!changed) return;
    for (const [packed] of ownAddresses) ownAddresses.delete(packed);
    for (const [packed, what] of fresh) ownAddresses.set(packed, what);
    newEpoch();
}

/* ---------------------------------------------------------------------- */
/* Outgoing                                                                 */

/**
 * Destinations whose refusal has been logged at info level: repeats go to
 * debug, so that a user cannot grow the log as fast as they can send.
 */
let refusalsLogged = new LuaTable<string, boolean>();
let refusalsLoggedCount = 0;

/**
 * `key` says what was refused: the decoded address (so that rotating the
 * subdomains of one name, or its spellings, logs once) or the reason.
 */
function refusalLogLevel(key: string): "info" | "debug" {
    if (refusalsLogged.get(key)) return "debug";
    if (refusalsLoggedCount >= 4096) {
        refusalsLogged = new LuaTable();
        refusalsLoggedCount = 0;
    }
    refusalsLogged.set(key, true);
    refusalsLoggedCount += 1;
    return "info";
}

/** Answer a stanza we will not route with an error, unless it is one itself. */
function bounce(event: RouteEvent, condition: string, text: string, logKey: string, reason: RefusalReason): true {
    const stanza = event.stanza;
    countRefusal(event.from_host, reason);
    const stanzaType = stanza.attr.type;
    module.log(refusalLogLevel(logKey), "Not sending %s from %s to %s: %s", stanza.name, tostring(stanza.attr.from), event.to_host, text);
    // Only stanzas get an error back; dialback and other stream elements,
    // errors, results and unavailable presence are just dropped.
    if (stanza.name !== "message" && stanza.name !== "presence" && stanza.name !== "iq") return true;
    if (stanzaType === "error" || stanzaType === "result" || stanza.attr.from === undefined) return true;
    if (stanza.name === "presence" && stanzaType === "unavailable") return true;
    module.context(event.from_host).send(st.error_reply(stanza, "cancel", condition, text));
    return true;
}

/** route/remote on every host: other domains cost one suffix test. */
function checkRoute(event: RouteEvent): true | undefined {
    const toHost = event.to_host;
    const name = meshName(toHost);
    if (name === undefined) return undefined;
    const settings = settingsFor(event.from_host);
    if (settings.closed !== undefined) return bounce(event, "service-unavailable", `mod_s2s_v6mesh: ${settings.closed}`, `closed ${event.from_host}`, "closed");
    const [packed, err, code] = v6alt.decode(name, settings.lax);
    if (packed === undefined) {
        return bounce(event, "remote-server-not-found", v6alt.read_failure(toHost, name, err as string), `malformed ${code}`, "malformed");
    }
    const refused = refusalFor(settings, packed);
    if (refused !== false) {
        return bounce(event, "policy-violation", `${spelled(toHost, name)} is ${refused.refused}; this server does not connect there`, packed, refused.refusal_kind as RefusalReason);
    }
    return undefined;
}

/** One connection target: the address itself, port 5269, with a connection type (see sourceOf). */
function addressResolver(hostname: string, address: string, connType: string): ConnectResolver {
    let used = false;
    return {
        hostname,
        next(callback) {
            if (used) {
                callback();
                return;
            }
            used = true;
            callback(connType, address, S2S_PORT);
        },
    };
}

/**
 * The address a local host's connections leave from: the one its own
 * .v6.alt name encodes (a component under a host: the host's), because
 * peers check it. Undefined for a host with a DNS name: the kernel chooses.
 */
function sourceOf(host: string | undefined): string | undefined {
    const name = meshName(host);
    if (name === undefined) return undefined;
    const [packed] = v6alt.decode(name, true);
    return packed;
}

/**
 * Where a connection to a .v6.alt name goes. The route check has vetted the
 * name already; this is the last gate, whatever opened the connection, so it
 * decides afresh with the machine's current addresses.
 */
function connectTarget(fromHost: string | undefined, toHost: string): ConnectResolver | undefined {
    const name = meshName(toHost);
    if (name === undefined) return undefined;
    const settings = settingsFor(fromHost);
    if (settings.closed !== undefined) return notConnecting(fromHost, toHost, "closed", `mod_s2s_v6mesh: ${settings.closed}`);
    const [packed, err] = v6alt.decode(name, settings.lax);
    if (packed === undefined) return notConnecting(fromHost, toHost, "malformed", err as string);
    refreshOwnAddresses();
    const decision = policies.decide(settings.policy, packed);
    if (decision.refused !== undefined) {
        module.log("warn", "Not connecting from %s to %s: it is %s", tostring(fromHost), spelled(toHost, name), decision.refused);
        return notConnecting(fromHost, toHost, decision.refusal_kind as RefusalReason, `${spelled(toHost, name)} is ${decision.refused}`);
    }
    const source = sourceOf(fromHost);
    if (source === undefined) return connecting(fromHost, toHost, decision.address, "tcp6");
    const sourceText = v6alt.format_ip(source) as string;
    if (!onMachine.get(source)) {
        const why = `${tostring(fromHost)} sends from [${sourceText}], the address its name encodes, and that is not an address of this machine`;
        module.log("warn", "Not connecting from %s to %s: %s", tostring(fromHost), toHost, why);
        return notConnecting(fromHost, toHost, "no-source-address", why);
    }
    module.log("debug", "Connecting from %s [%s] to %s [%s]", tostring(fromHost), sourceText, toHost, decision.address);
    return connecting(fromHost, toHost, decision.address, compat.bound_connection_type(routing, socketlib, sourceText));
}

function connecting(fromHost: string | undefined, toHost: string, address: string, connType: string): ConnectResolver {
    metricConnections.with_labels(fromHost ?? ":unknown", "connecting").add(1);
    return addressResolver(toHost, address, connType);
}

/** A connection the module does not make: counted, and a resolver without targets that says why. */
function notConnecting(fromHost: string | undefined, toHost: string, reason: RefusalReason, why: string): ConnectResolver {
    metricConnections.with_labels(fromHost ?? ":unknown", "refused").add(1);
    countRefusal(fromHost, reason);
    return compat.exhausted(toHost, why);
}

function meshState(session: S2SSession): MeshSessionState {
    let state = session.v6mesh;
    if (state === undefined) {
        state = { plaintext: false, trusted: new LuaTable() };
        session.v6mesh = state;
    }
    return state;
}

/** Let a session that this policy sends without TLS past s2s_require_encryption. */
function markPlaintext(session: S2SSession, peer: string, decision: Decision): void {
    // mod_s2s and mod_tls read s2s_require_encryption once at load; `secure`
    // is the per-session switch they honour. `encrypted` stays unset.
    session.secure = true;
    // No TLS context: mod_tls then neither offers nor starts TLS. (Prosody 13
    // already stops at `secure`; 0.12's mod_tls only looks at this.)
    session.ssl_ctx = false;
    meshState(session).plaintext = true;
    session.log("info", "Federating with %s without TLS: range %s has use_tls = false", peer, (decision.range as { cidr: { text: string } }).cidr.text);
}

/** Count the peer's certificate (or, without TLS, the peer) as verified. */
function trustPeer(session: S2SSession, peer: string, decision: Decision): void {
    session.cert_chain_status = "valid";
    session.cert_identity_status = "valid";
    if (session.direction === "outgoing") session.authenticated_remote = true;
    meshState(session).trusted.set(peer, true);
    const byRange = decision.range !== undefined && decision.range.trust_all_certs !== undefined;
    const why = byRange ? `range ${(decision.range as { cidr: { text: string } }).cidr.text}` : "s2s_v6mesh_trust_all_certs";
    session.log("info", "Trusting %s: it is at [%s], the address its name encodes (%s)", peer, decision.address, why);
    metricTrusted.with_labels(localHostOf(session) ?? ":unknown", session.direction, byRange ? "range" : "s2s_v6mesh_trust_all_certs").add(1);
}

/** A use_tls = false range: no TLS, and with trust the address alone authenticates the peer. */
function goWithoutTls(session: S2SSession, peer: string, decision: Decision): void {
    markPlaintext(session, peer, decision);
    if (decision.trust_all_certs) trustPeer(session, peer, decision);
}

function onOutgoingCreated(event: { session: S2SSession }): void {
    const session = event.session;
    const toHost = session.to_host as string;
    const name = meshName(toHost);
    if (name === undefined) return;
    const settings = settingsFor(session.from_host);
    if (settings.closed !== undefined) return;
    const [packed] = v6alt.decode(name, settings.lax);
    if (packed === undefined) return;
    const decision = policies.decide(settings.policy, packed);
    meshState(session).address = decision.address;
    session.log("debug", "%s is at [%s]:%d (%s)", toHost, decision.address, S2S_PORT, policies.describe(decision));
    if (decision.refused === undefined && !decision.use_tls) goWithoutTls(session, toHost, decision);
}

/* ---------------------------------------------------------------------- */
/* Incoming claims                                                          */

function refuse(session: S2SSession, claimed: string, why: string, reason: RefusalReason): false {
    countRefusal(localHostOf(session), reason);
    session.log("warn", "Refusing s2s stream from [%s] claiming to be %s: %s", tostring(session.ip), claimed, why);
    session.close({ condition: "not-authorized", text: `Not accepted as ${claimed}: ${why}` }, undefined, why);
    return false;
}

function peerAddress(session: S2SSession): string | undefined {
    let ip = session.ip;
    if (ip === undefined && session.conn !== undefined) ip = (session.conn as { ip(this: void): string | undefined }).ip();
    if (ip === undefined) return undefined;
    // IPv4 peers as ::ffff:a.b.c.d, so that IPv4-mapped ranges match them.
    const [packed] = v6alt.parse_ip(string.find(ip, ":", 1, true)[0] === undefined ? `::ffff:${ip}` : ip);
    return packed;
}

/**
 * Why `localHost` does not accept `peer` on this session, or false when it
 * does, or undefined when the module has nothing to say (not a .v6.alt name
 * and no blocked range). `decision` is what the policy says about the peer;
 * `reason` the kind of refusal, for the refusals metric.
 */
function judgePeer(
    session: S2SSession,
    peer: string | undefined,
    localHost: string | undefined
): LuaMultiReturn<[string | false | undefined, Decision | undefined, RefusalReason | undefined]> {
    const settings = settingsFor(localHost);
    const name = peer === undefined ? undefined : meshName(peer);
    if (name === undefined) {
        if (!settings.blocks) return $multi(undefined, undefined, undefined);
        const address = peerAddress(session);
        if (address === undefined) return $multi(undefined, undefined, undefined);
        const decision = policies.decide(settings.policy, address);
        return $multi(decision.blocked ? `its address [${decision.address}] is ${decision.refused}` : false, decision, "blocked");
    }
    if (settings.closed !== undefined) return $multi(`the .v6.alt federation of ${tostring(localHost)} is closed (${settings.closed})`, undefined, "closed");
    const [packed, err] = v6alt.decode(name, settings.lax);
    if (packed === undefined) return $multi(v6alt.read_failure(peer as string, name, err as string), undefined, "malformed");
    const decision = policies.decide(settings.policy, packed);
    if (peerAddress(session) !== packed) {
        return $multi(`that name belongs to ${decision.address}, the connection is from ${tostring(session.ip)}`, decision, "wrong-address");
    }
    if (decision.refused !== undefined) return $multi(`its address is ${decision.refused}`, decision, decision.refusal_kind as RefusalReason);
    return $multi(false, decision, undefined);
}

/**
 * A session is, or claims to be, `peer`. Undefined when the module has
 * nothing to say; false (session closed) when the claim does not hold; else
 * what the policy says about the peer.
 */
function checkPeer(session: S2SSession, peer: string | undefined, localHost: string | undefined): Decision | false | undefined {
    const [why, decision, reason] = judgePeer(session, peer, localHost);
    if (why === undefined) return undefined;
    if (why !== false) return refuse(session, peer ?? "(no name)", why, reason as RefusalReason);
    if (peer === undefined || meshName(peer) === undefined) return undefined;
    return decision;
}

function localHostOf(session: S2SSession): string | undefined {
    return session.direction === "outgoing" ? session.from_host : session.to_host;
}

interface CertificateEvent {
    host: string | undefined;
    session: S2SSession;
}

/**
 * After mod_s2s_auth_certs (509) has judged the certificate and before
 * mod_s2s's policy check (-1): where trust applies and Prosody's own check
 * did not pass, this module vouches for the peer and claims the event.
 */
function onCheckCertificate(event: CertificateEvent): boolean | undefined {
    const session = event.session;
    const decision = checkPeer(session, event.host, localHostOf(session));
    if (decision === undefined) return undefined;
    if (decision === false) return false;
    if (session.cert_chain_status === "valid" && session.cert_identity_status === "valid") return undefined;
    if (!decision.trust_all_certs) {
        session.log("debug", "Leaving the certificate of %s to Prosody: trust_all_certs is off for [%s]", tostring(event.host), decision.address);
        return undefined;
    }
    trustPeer(session, event.host as string, decision);
    return true;
}

/**
 * Incoming streams: check the claimed name against the address as soon as
 * it is known, before any feature (STARTTLS, SASL EXTERNAL) is offered.
 */
function onStreamFeatures(event: { origin: S2SSession }): void {
    const session = event.origin;
    if (session.v6mesh !== undefined && session.v6mesh.address !== undefined) return;
    const peer = session.from_host;
    const decision = checkPeer(session, peer, session.to_host);
    if (decision === undefined || decision === false) return;
    meshState(session).address = decision.address;
    if (!decision.use_tls && !session.secure) goWithoutTls(session, peer as string, decision);
}

/**
 * A dialback claim (db:result, or a db:verify that asks about a key) on an
 * incoming stream, before mod_dialback acts on it: a db:result would make
 * this server open a connection to the claimed name to verify it.
 */
function onDialbackClaim(event: StanzaEvent): true | undefined {
    const session = event.origin;
    if (session.direction !== "incoming" || event.stanza.attr.type !== undefined) return undefined;
    const claimed = event.stanza.attr.from;
    if (claimed === undefined) return undefined;
    return checkPeer(session, claimed, event.stanza.attr.to ?? session.to_host) === false ? true : undefined;
}

/**
 * The last gate, whatever the mechanism (dialback, SASL EXTERNAL) and
 * whichever names a stream authenticates for.
 */
function onAuthenticated(event: { session: S2SSession; host: string }): false | undefined {
    const session = event.session;
    const decision = checkPeer(session, event.host, localHostOf(session));
    if (decision === false) return false;
    // A stream without TLS is only for the .v6.alt peers of use_tls = false
    // ranges: no other name may piggyback on it.
    if (session.v6mesh !== undefined && session.v6mesh.plaintext && (decision === undefined || decision.use_tls)) {
        return refuse(session, event.host, "this stream runs without TLS, which only a .v6.alt peer in a use_tls = false range may use", "plaintext-piggyback");
    }
    return undefined;
}

/* ---------------------------------------------------------------------- */
/* Delivery: each host's settings, for every stanza it receives             */

interface StanzaEvent {
    origin: S2SSession;
    stanza: Stanza;
}

/** Why `localHost` refuses stanzas from `remote` on this session, or false. */
function deliveryVerdict(session: S2SSession, remote: string, localHost: string): string | false {
    const [why, decision] = judgePeer(session, remote, localHost);
    if (why !== undefined && why !== false) return why;
    const state = session.v6mesh;
    if (state === undefined) return false;
    if (state.plaintext && (decision === undefined || decision.use_tls)) {
        return `${localHost} takes ${remote} only over TLS, and this stream has none`;
    }
    if (state.trusted.get(remote) && (decision === undefined || !decision.trust_all_certs)) {
        return `its certificate was accepted on the strength of another host's s2s_v6mesh settings, and ${localHost} does not trust it`;
    }
    return false;
}

function checkDelivery(localHost: string, event: StanzaEvent): true | undefined {
    const session = event.origin;
    const sessionType = session.type;
    // mod_s2s hands the bounces of an outgoing queue in on a dummy "s2sin" session.
    if ((sessionType !== "s2sin" && sessionType !== "s2sout") || session.dummy) return undefined;
    const from = event.stanza.attr.from;
    const remote = from === undefined ? session.from_host : jid.host(from);
    if (remote === undefined) return undefined;
    const state = session.v6mesh;
    if (state === undefined && meshName(remote) === undefined && !settingsFor(localHost).blocks) return undefined;
    const mesh = meshState(session);
    if (mesh.epoch !== epoch || mesh.verdicts === undefined) {
        mesh.verdicts = new LuaTable();
        mesh.epoch = epoch;
    }
    const key = `${localHost} ${remote}`;
    let verdict = mesh.verdicts.get(key);
    if (verdict === undefined) {
        verdict = deliveryVerdict(session, remote, localHost);
        mesh.verdicts.set(key, verdict);
        if (verdict !== false) session.log("warn", "Not delivering stanzas from %s to %s: %s", remote, localHost, verdict);
    }
    if (verdict === false) return undefined;
    countRefusal(localHost, "not-delivered");
    const stanza = event.stanza;
    const stanzaType = stanza.attr.type;
    if (stanzaType !== "error" && stanzaType !== "result" && !(stanza.name === "presence" && stanzaType !== undefined)) {
        session.send(st.error_reply(stanza, "cancel", "policy-violation", `${localHost} does not accept this from ${remote}: ${verdict}`));
    }
    return true;
}

const DELIVERY_EVENTS: string[] = [];
for (const kind of ["message", "presence", "iq"]) {
    for (const to of ["bare", "full", "host"]) DELIVERY_EVENTS.push(`${kind}/${to}`);
}

/* ---------------------------------------------------------------------- */
/* Every host of the process                                                */

const covered = new LuaTable<string, boolean>();

/** Hook one host's events (once); the hooks leave with the module. */
function coverHost(host: string): void {
    const entry = prosody.hosts.get(host);
    if (entry === undefined || covered.get(host)) return;
    covered.set(host, true);
    const events = entry.events;
    module.hook_object_event(events, "route/remote", checkRoute, 100);
    module.hook_object_event(events, "s2sout-created", onOutgoingCreated, 100);
    module.hook_object_event(events, "s2s-stream-features", onStreamFeatures, 1000);
    module.hook_object_event(events, "s2s-authenticated", onAuthenticated, 1000);
    module.hook_object_event(events, "stanza/jabber:server:dialback:result", onDialbackClaim, 1000);
    module.hook_object_event(events, "stanza/jabber:server:dialback:verify", onDialbackClaim, 1000);
    for (const name of DELIVERY_EVENTS) {
        module.hook_object_event<StanzaEvent>(events, name, (event) => checkDelivery(host, event), 2000);
    }
    compat.hook_host_routing(module, events, routing);
}

/** Warn about a .v6.alt host that peers will not accept. */
function diagnoseHost(host: string): void {
    const name = meshName(host);
    if (name === undefined) return;
    const [packed, err] = v6alt.decode(name);
    if (packed === undefined) {
        const [laxPacked] = v6alt.decode(name, true);
        const hint = laxPacked !== undefined ? `; its canonical name is ${v6alt.encode(laxPacked)[0]}` : "";
        module.log("warn", "%s%s. Peers running this module will refuse it.", err as string, hint);
        return;
    }
    const address = v6alt.format_ip(packed) as string;
    if (!machineAddresses().get(packed)) {
        module.log(
            "warn",
            "%s stands for [%s], which is not an address of this machine: peers connect there and check connections come from there, so it cannot federate until the address is added",
            host,
            address
        );
    } else if (!s2sListensOn(packed)) {
        module.log("warn", "%s stands for [%s], but s2s does not listen there (s2s_interfaces, or interfaces): peers cannot connect to it", host, address);
    } else {
        module.log("info", "%s is served at [%s], and its s2s connections leave from there", host, address);
    }
}

/** Whether Prosody's s2s port listens on `packed`: s2s_interfaces, else interfaces, else Prosody's default ("::" among them). */
function s2sListensOn(packed: string): boolean {
    let option = module.get_option("s2s_interfaces") ?? module.get_option("interfaces") ?? ["*", "::"];
    if (type(option) === "string") option = [option];
    if (type(option) !== "table") return true; // Prosody reports that option itself
    for (const iface of option as unknown[]) {
        if (iface === "::") return true;
        if (type(iface) === "string" && v6alt.parse_ip(iface as string)[0] === packed) return true;
    }
    return false;
}

function onHostActivated(host: string): void {
    settingsByHost.set(host, readHostSettings(host));
    coverHost(host);
    refreshOwnAddresses();
    newEpoch();
    diagnoseHost(host);
}

/** Closed: every stanza to a .v6.alt name, from any host, bounces with the reason. */
function coverHostClosed(host: string): void {
    const entry = prosody.hosts.get(host);
    if (entry === undefined || covered.get(host)) return;
    covered.set(host, true);
    module.hook_object_event<RouteEvent>(
        entry.events,
        "route/remote",
        (event) => (meshName(event.to_host) !== undefined ? bounce(event, "service-unavailable", `mod_s2s_v6mesh: ${failure}`, "closed", "closed") : undefined),
        100
    );
}

if (failure === undefined) {
    for (const [host] of prosody.hosts) coverHost(host);
    // core/hostmanager fires these with the bare host name, not an event table.
    module.hook<string>("host-activated", onHostActivated);
    module.hook<string>("host-deactivated", (host) => {
        settingsByHost.delete(host);
        covered.delete(host);
        refreshOwnAddresses();
    });
    module.hook("s2s-check-certificate", onCheckCertificate, 500);
    compat.route_outgoing(routing, connectTarget);
    refreshOwnAddresses();
    module.add_timer(60, () => {
        refreshOwnAddresses();
        return 60;
    });
    for (const [host] of prosody.hosts) diagnoseHost(host);
} else {
    module.log("error", "%s; .v6.alt federation is closed until this is fixed and the module reloaded", failure);
    for (const [host] of prosody.hosts) coverHostClosed(host);
    module.hook<string>("host-activated", coverHostClosed);
    module.hook<string>("host-deactivated", (host) => covered.delete(host));
    const why = `mod_s2s_v6mesh: ${failure}`;
    routing.target = (_fromHost, toHost) => (meshName(toHost) !== undefined ? compat.exhausted(toHost, why) : undefined);
}
compat.gate_dns(routing, dnsGate);

// This instance is in force (open or closed): drop the guards an earlier
// instance left while it was being reloaded.
if (routing.unguard !== undefined) {
    for (const [, unguard] of routing.unguard) unguard();
    routing.unguard = undefined;
    if (failure === undefined) module.log("info", "Reloaded: .v6.alt routing is open again");
}
routing.closed = undefined;

/** A host that lists the module: a per-host reload re-reads that host's options. */
module.add_host = (hostModule: ProsodyModule) => {
    if (failure !== undefined) return;
    settingsByHost.set(hostModule.host, readHostSettings(hostModule.host));
    newEpoch();
};

/* ---------------------------------------------------------------------- */
/* The .v6.alt resolver, on Prosody's event loop                            */

/** Source address -> may it ask: parsing the address costs more than the answer. */
let dnsAllowedCache = new LuaTable<string, boolean>();
let dnsAllowedCached = 0;

function dnsAllowed(ip: string | undefined): boolean {
    if (ip === undefined) return false;
    let verdict = dnsAllowedCache.get(ip);
    if (verdict === undefined) {
        verdict = dns.allowed(dnsSettings.allow, ip);
        if (dnsAllowedCached >= 1024) {
            dnsAllowedCache = new LuaTable();
            dnsAllowedCached = 0;
        }
        dnsAllowedCache.set(ip, verdict);
        dnsAllowedCached += 1;
    }
    return verdict;
}

/** The dns_queries counter of each response code (the low 4 bits of a reply's fourth byte). */
const dnsCounters = new LuaTable<number, Metric>();
const RCODE_NAMES = ["noerror", "formerr", "servfail", "nxdomain", "notimp", "refused"];
for (let rcode = 0; rcode < RCODE_NAMES.length; rcode++) dnsCounters.set(rcode, metricDns.with_labels(RCODE_NAMES[rcode]));
const dnsUnanswered = metricDns.with_labels("unanswered");

/** One DNS message (UDP datagram or TCP frame) from `ip`: the reply, or undefined. */
function answerDns(message: string, ip: string | undefined): string | undefined {
    const [ok, reply] = pcall(dnsAllowed(ip) ? dns.respond : dns.refuse, message, dnsSettings.ttl);
    if (ok && reply !== undefined) {
        const counter = dnsCounters.get(string.byte(reply as string, 4) % 16);
        if (counter !== undefined) counter.add(1);
        return reply as string;
    }
    dnsUnanswered.add(1);
    if (!ok) module.log("error", "DNS query from [%s] not answered: %s", tostring(ip), tostring(reply));
    return undefined;
}

// The listener itself (UDP, TCP and its limits) is dns_listener.ts.
const closeDns: ((this: void) => void)[] = [];
if (failure === undefined && dnsSettings.listen.length > 0) {
    closeDns.push(
        dnsListener.listen(
            {
                server: netserver,
                socket: socketlib,
                log: (level, message, ...args) => module.log(level, message, ...args),
                timer: (delay, callback) => {
                    module.add_timer(delay, callback);
                },
                allowed: dnsAllowed,
                answer: answerDns,
            },
            dnsSettings.listen
        )
    );
}

/* ---------------------------------------------------------------------- */
/* Reload and unload                                                        */

/** What `v6alt status` shows: the machine's addresses and names, where each host sends from. */
function statusReport(): import("./shell").StatusReport {
    refreshOwnAddresses();
    const hostsAt = new LuaTable<string, string[]>();
    const others: { host: string; address?: string }[] = [];
    const closedHosts: { host: string; why: string }[] = [];
    const hostNames: string[] = [];
    for (const [host] of prosody.hosts) hostNames.push(host);
    table.sort(hostNames);
    for (const host of hostNames) {
        const closed = settingsFor(host).closed;
        if (closed !== undefined) closedHosts.push({ host, why: closed });
        const source = sourceOf(host);
        if (source === undefined) others.push({ host });
        else if (!onMachine.get(source)) others.push({ host, address: v6alt.format_ip(source) as string });
        else {
            const list = hostsAt.get(source) ?? [];
            list.push(host);
            hostsAt.set(source, list);
        }
    }
    const addresses: { address: string; name: string; hosts: string[] }[] = [];
    for (const [packed] of onMachine) {
        addresses.push({ address: v6alt.format_ip(packed) as string, name: v6alt.encode(packed)[0] as string, hosts: hostsAt.get(packed) ?? [] });
    }
    table.sort(addresses, (a, b) => a.address < b.address);
    const listen: string[] = [];
    for (const [address, port] of dnsSettings.listen) listen.push(`[${address}]:${port}`);
    return { closed: routing.closed, addresses, others, closed_hosts: closedHosts, dns_listen: listen, refusals: refusalCounts };
}

/** While no instance is in charge, .v6.alt names neither route nor connect. */
function closeRouting(why: string): void {
    routing.closed = why;
    const refuseRoute = (event: RouteEvent) =>
        meshName(event.to_host) !== undefined ? bounce(event, "service-unavailable", `${routing.closed ?? why}; not sending to ${event.to_host}`, "reloading", "closed") : undefined;
    const refuseConnect = (toHost: string) => (meshName(toHost) !== undefined ? compat.exhausted(toHost, routing.closed ?? why) : undefined);
    routing.target = (_fromHost, toHost) => refuseConnect(toHost);
    const unguard = new LuaTable<number, (this: void) => void>();
    for (const [, entry] of prosody.hosts) unguard.set(unguard.length() + 1, compat.guard_host_routing(entry.events, refuseRoute, refuseConnect));
    routing.unguard = unguard;
}

const removeShellCommands =
    failure === undefined
        ? compat.add_shell_commands(
              module,
              "v6alt",
              "Convert between IPv6 addresses and .v6.alt names",
              shell.commands({
                  lax: (host) => settingsFor(host).lax,
                  policy: (host) => (host === undefined || prosody.hosts.get(host) !== undefined ? settingsFor(host).policy : undefined),
                  status: statusReport,
              })
          )
        : () => undefined;

module.unload = () => {
    removeShellCommands();
    for (const close of closeDns) close();
    if (module.reloading) {
        closeRouting("mod_s2s_v6mesh is being reloaded (if this lasts, the reload failed: see the log)");
        return;
    }
    compat.unroute_outgoing(routing);
    if (routing.unguard !== undefined) {
        for (const [, unguard] of routing.unguard) unguard();
        routing.unguard = undefined;
    }
};
