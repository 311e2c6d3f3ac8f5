/**
 * mod_s2s_v6mesh: DNS-free server-to-server federation for .v6.alt names.
 * - route/remote: a stanza for *.v6.alt is checked before mod_s2s sees it;
 *   bad names and forbidden addresses bounce at once.
 * - outgoing connections go to the address the name encodes (compat.ts).
 * - a peer claiming a .v6.alt name must connect from that address.
 * - where the policy says so, the peer's certificate counts as valid.
 */
import * as v6alt from "./v6alt";
import * as policies from "./policy";
import { add_shell_commands, exhausted, require_lib, route_outgoing, unroute_outgoing } from "./compat";

type StanzaLib = typeof import("prosody.util.stanza");
type NetLib = typeof import("prosody.util.net");

module.set_global();

const st = require_lib<StanzaLib>("util.stanza");
const netutil = require_lib<NetLib>("util.net");

const S2S_PORT = 5269;
const SUFFIX = v6alt.suffix;
const string_sub = string.sub;

interface HostSettings {
    policy: policies.Policy;
    lax: boolean;
    refusals: RefusalCache;
}

/** Packed address -> the local host whose .v6.alt name encodes it. */
const ownAddresses = new LuaTable<string, string>();
const hostSettings = new LuaTable<string, HostSettings>();

/**
 * Packed destination -> why it is refused, or false. The policy is fixed at
 * load except for our own addresses, so this is cleared when those change;
 * it keeps policies.decide() off the per-stanza path.
 */
interface RefusalCache {
    entries: LuaTable<string, string | false>;
    size: number;
}
const REFUSAL_CACHE_LIMIT = 4096;

function clearRefusalCaches(): void {
    for (const [, settings] of hostSettings) {
        settings.refusals.entries = new LuaTable();
        settings.refusals.size = 0;
    }
}

/** Why the policy refuses this destination, or false; remembered per host. */
function refusalFor(cache: RefusalCache, policy: policies.Policy, packed: string): string | false {
    const known = cache.entries.get(packed);
    if (known !== undefined) return known;
    const refused = policies.decide(policy, packed).refused ?? false;
    if (cache.size >= REFUSAL_CACHE_LIMIT) {
        cache.entries = new LuaTable();
        cache.size = 0;
    }
    cache.entries.set(packed, refused);
    cache.size += 1;
    return refused;
}

/** Read and validate this module's options; a bad value stops the load. */
function readSettings(m: ProsodyModule): HostSettings {
    const trust = m.get_option_boolean("s2s_v6mesh_trust_all_certs", true);
    const lax = m.get_option_boolean("s2s_v6mesh_lax_names", false);
    const [policy, err] = policies.new_policy(
        trust === undefined ? m.get_option("s2s_v6mesh_trust_all_certs") : trust,
        m.get_option("s2s_v6mesh_ranges", {})
    );
    if (policy === undefined || lax === undefined) {
        const why = err ?? `s2s_v6mesh_lax_names must be true or false, not ${tostring(m.get_option("s2s_v6mesh_lax_names"))}`;
        m.log("error", "Invalid configuration, not loading: %s", why);
        error(`mod_s2s_v6mesh: ${why}`, 0);
    }
    policy.own = ownAddresses;
    return { policy, lax, refusals: { entries: new LuaTable(), size: 0 } };
}

const globalSettings = readSettings(module);

function settingsFor(host: string | undefined): HostSettings {
    return (host !== undefined && hostSettings.get(host)) || globalSettings;
}

function noteOwnHost(host: string): void {
    if (string_sub(host, -7) !== SUFFIX) return;
    const [packed] = v6alt.decode(host, true);
    if (packed !== undefined && ownAddresses.get(packed) === undefined) {
        ownAddresses.set(packed, host);
        clearRefusalCaches();
    }
}

function forgetOwnHost(host: string): void {
    for (const [packed, owner] of ownAddresses) {
        if (owner === host) ownAddresses.delete(packed);
    }
    for (const [other] of prosody.hosts) noteOwnHost(other);
    clearRefusalCaches();
}

for (const [host] of prosody.hosts) noteOwnHost(host);
// core/hostmanager fires these with the bare host name, not an event table.
module.hook<string>("host-activated", (host) => noteOwnHost(host));
module.hook<string>("host-deactivated", (host) => forgetOwnHost(host));

/* ---------------------------------------------------------------------- */
/* Outgoing                                                                 */

interface RouteEvent {
    from_host: string;
    to_host: string;
    stanza: Stanza;
}

/** Answer a stanza we will not route with an error, unless it is one itself. */
function bounce(hostModule: ProsodyModule, event: RouteEvent, condition: string, text: string): true {
    const stanza = event.stanza;
    const stanzaType = stanza.attr.type;
    hostModule.log("info", "Not sending %s from %s to %s: %s", stanza.name, tostring(stanza.attr.from), event.to_host, text);
    // Only stanzas get an error back; dialback and other stream elements,
    // errors, results and unavailable presence are just dropped.
    if (stanza.name !== "message" && stanza.name !== "presence" && stanza.name !== "iq") return true;
    if (stanzaType === "error" || stanzaType === "result" || stanza.attr.from === undefined) return true;
    if (stanza.name === "presence" && stanzaType === "unavailable") return true;
    hostModule.send(st.error_reply(stanza, "cancel", condition, text));
    return true;
}

/** One connection target: the address itself, port 5269. */
function addressResolver(hostname: string, address: string): ConnectResolver {
    let used = false;
    return {
        hostname,
        next(callback) {
            if (used) {
                callback();
                return;
            }
            used = true;
            callback("tcp6", address, S2S_PORT);
        },
    };
}

/** Where outgoing connections to a .v6.alt name go. The route check has already vetted the name. */
function resolverFor(toHost: string): ConnectResolver | undefined {
    if (string_sub(toHost, -7) !== SUFFIX) return undefined;
    const [packed, err] = v6alt.decode(toHost, true);
    if (packed === undefined) return exhausted(toHost, err);
    return addressResolver(toHost, v6alt.format_ip(packed) as string);
}

/** Let a session that this policy sends without TLS past s2s_require_encryption. */
function markPlaintext(session: S2SSession, peer: string, decision: policies.Decision): void {
    // mod_s2s and mod_tls read s2s_require_encryption once at load; `secure`
    // is the per-session switch they honour. `encrypted` stays unset.
    session.secure = true;
    // No TLS context: mod_tls then neither offers nor starts TLS. (Prosody 13
    // already stops at `secure`; 0.12's mod_tls only looks at this.)
    session.ssl_ctx = false;
    (session.v6mesh as { plaintext: boolean }).plaintext = true;
    session.log("info", "Federating with %s without TLS: range %s has use_tls = false", peer, (decision.range as policies.RangeSettings).cidr.text);
}

/** Count the peer's certificate (or, without TLS, the peer) as verified. */
function trustPeer(session: S2SSession, peer: string, decision: policies.Decision): void {
    session.cert_chain_status = "valid";
    session.cert_identity_status = "valid";
    if (session.direction === "outgoing") session.authenticated_remote = true;
    const why = decision.range !== undefined && decision.range.trust_all_certs !== undefined ? `range ${decision.range.cidr.text}` : "s2s_v6mesh_trust_all_certs";
    session.log("info", "Trusting %s: it is at [%s], the address its name encodes (%s)", peer, decision.address, why);
}

/** A use_tls = false range: no TLS, and with trust the address alone authenticates the peer. */
function goWithoutTls(session: S2SSession, peer: string, decision: policies.Decision): void {
    markPlaintext(session, peer, decision);
    if (decision.trust_all_certs) trustPeer(session, peer, decision);
}

/* ---------------------------------------------------------------------- */
/* Incoming claims                                                          */

function refuse(session: S2SSession, claimed: string, why: string): false {
    session.log("warn", "Refusing s2s stream from [%s] claiming to be %s: %s", tostring(session.ip), claimed, why);
    session.close({ condition: "not-authorized", text: `Not accepted as ${claimed}: ${why}` }, undefined, why);
    return false;
}

/**
 * A session is, or claims to be, `peer`. Undefined when that is not a
 * .v6.alt name; false (session closed) when the claim does not hold; else
 * what the policy says about the peer.
 */
function checkPeer(session: S2SSession, peer: string | undefined, localHost: string | undefined): policies.Decision | false | undefined {
    if (peer === undefined || string_sub(peer, -7) !== SUFFIX) return undefined;
    const settings = settingsFor(localHost);
    const [packed, err] = v6alt.decode(peer, settings.lax);
    if (packed === undefined) return refuse(session, peer, err as string);
    const ip = session.ip;
    const [peerPacked] = v6alt.parse_ip(ip as string);
    const decision = policies.decide(settings.policy, packed);
    if (peerPacked !== packed) {
        return refuse(session, peer, `that name belongs to ${decision.address}, the connection is from ${tostring(ip)}`);
    }
    if (decision.refused !== undefined) return refuse(session, peer, `its address is ${decision.refused}`);
    return decision;
}

function localHostOf(session: S2SSession): string | undefined {
    return session.direction === "outgoing" ? session.from_host : session.to_host;
}

interface CertificateEvent {
    host: string | undefined;
    session: S2SSession;
}

// Before mod_s2s_auth_certs (509): where trust applies this module decides,
// and claims the event so Prosody's chain verification cannot overrule it.
module.hook<CertificateEvent>(
    "s2s-check-certificate",
    (event) => {
        const session = event.session;
        const decision = checkPeer(session, event.host, localHostOf(session));
        if (decision === undefined) return undefined;
        if (decision === false) return false;
        if (!decision.trust_all_certs) {
            session.log("debug", "Leaving the certificate of %s to Prosody: trust_all_certs is off for [%s]", tostring(event.host), decision.address);
            return undefined;
        }
        trustPeer(session, event.host as string, decision);
        return true;
    },
    600
);

/* ---------------------------------------------------------------------- */
/* Per host                                                                 */

function localAddresses(): LuaTable<string, boolean> {
    const found = new LuaTable<string, boolean>();
    const [ok, list] = pcall(netutil.local_addresses, "ipv6", true);
    if (ok && list !== undefined) {
        for (const text of list as string[]) {
            const [packed] = v6alt.parse_ip(text);
            if (packed !== undefined) found.set(packed, true);
        }
    }
    return found;
}

/** Warn about a .v6.alt host that peers will not accept. */
function diagnoseHost(hostModule: ProsodyModule): void {
    const host = hostModule.host;
    if (string_sub(host, -7) !== SUFFIX) return;
    const [packed, err] = v6alt.decode(host);
    if (packed === undefined) {
        const [laxPacked] = v6alt.decode(host, true);
        const hint = laxPacked !== undefined ? `; its canonical name is ${v6alt.encode(laxPacked)[0]}` : "";
        hostModule.log("warn", "%s%s. Peers running this module will refuse it.", err as string, hint);
        return;
    }
    const address = v6alt.format_ip(packed) as string;
    if (!localAddresses().get(packed)) {
        hostModule.log("warn", "%s stands for [%s], which is not an address of this machine: peers connect there and check connections come from there", host, address);
    } else {
        hostModule.log("info", "%s is served at [%s]", host, address);
    }
}

module.add_host = (hostModule: ProsodyModule) => {
    const settings = readSettings(hostModule);
    hostSettings.set(hostModule.host, settings);
    noteOwnHost(hostModule.host);
    diagnoseHost(hostModule);

    // Every remote stanza passes here: other domains cost one suffix test.
    hostModule.hook<RouteEvent>(
        "route/remote",
        (event) => {
            const toHost = event.to_host;
            if (string_sub(toHost, -7) !== SUFFIX) return undefined;
            const [packed, err] = v6alt.decode(toHost, settings.lax);
            if (packed === undefined) return bounce(hostModule, event, "remote-server-not-found", err as string);
            const refused = refusalFor(settings.refusals, settings.policy, packed);
            if (refused !== false) {
                return bounce(hostModule, event, "policy-violation", `${toHost} is ${refused}; this server does not connect there`);
            }
            return undefined;
        },
        100
    );

    hostModule.hook<{ session: S2SSession }>(
        "s2sout-created",
        (event) => {
            const session = event.session;
            const toHost = session.to_host as string;
            if (string_sub(toHost, -7) !== SUFFIX) return;
            const [packed] = v6alt.decode(toHost, true);
            if (packed === undefined) return;
            const decision = policies.decide(settings.policy, packed);
            session.v6mesh = { address: decision.address, plaintext: false };
            session.log("debug", "%s is at [%s]:%d (%s)", toHost, decision.address, S2S_PORT, policies.describe(decision));
            if (!decision.use_tls) goWithoutTls(session, toHost, decision);
        },
        100
    );
    route_outgoing(hostModule, resolverFor);

    // Incoming streams: check the claimed name against the address as soon as
    // it is known, before any feature (STARTTLS, SASL EXTERNAL) is offered.
    hostModule.hook<{ origin: S2SSession }>(
        "s2s-stream-features",
        (event) => {
            const session = event.origin;
            if (session.v6mesh !== undefined) return;
            const peer = session.from_host;
            const decision = checkPeer(session, peer, hostModule.host);
            if (decision === undefined || decision === false) return;
            session.v6mesh = { address: decision.address, plaintext: false };
            if (!decision.use_tls && !session.secure) goWithoutTls(session, peer as string, decision);
        },
        1000
    );

    // The last gate, whatever the mechanism (dialback, SASL EXTERNAL) and
    // whichever names a stream authenticates for.
    hostModule.hook<{ session: S2SSession; host: string }>(
        "s2s-authenticated",
        (event) => {
            if (checkPeer(event.session, event.host, hostModule.host) === false) return false;
            return undefined;
        },
        1000
    );
};

/* ---------------------------------------------------------------------- */
/* prosodyctl shell v6alt ...                                               */

type ShellResult = LuaMultiReturn<[boolean, string] | [undefined, string]>;

function shellGetDomain(ip: string): ShellResult {
    const [name, err] = v6alt.ip_to_name(ip);
    if (name === undefined) return $multi(undefined, err as string);
    return $multi(true, `Encoded hostname: ${name}`);
}

function shellGetIp(name: string): ShellResult {
    const [ip, err] = v6alt.name_to_ip(name, globalSettings.lax);
    if (ip === undefined) return $multi(undefined, err as string);
    return $multi(true, `IP address: ${ip}`);
}

function shellRange(target: string, host?: string): ShellResult {
    if (host !== undefined && hostSettings.get(host) === undefined) {
        return $multi(undefined, `'${host}' is not a host of this server with mod_s2s_v6mesh loaded`);
    }
    let packed: string | undefined;
    let err: string | undefined;
    if (type(target) === "string" && string.find(target, ":", 1, true)[0] !== undefined) {
        [packed, err] = v6alt.parse_ip(target);
    } else {
        [packed, err] = v6alt.decode(target, settingsFor(host).lax);
    }
    if (packed === undefined) return $multi(undefined, err as string);
    const decision = policies.decide(settingsFor(host).policy, packed);
    return $multi(true, `[${decision.address}] ${policies.describe(decision)}`);
}

const removeShellCommands = add_shell_commands(module, "v6alt", "Convert between IPv6 addresses and .v6.alt names", [
    { name: "get_domain", desc: "Show the .v6.alt name of an IPv6 address", args: ["ip"], handler: shellGetDomain },
    { name: "get_ip", desc: "Show the IPv6 address a .v6.alt name stands for", args: ["domain"], handler: shellGetIp },
    { name: "range", desc: "Show which s2s_v6mesh_ranges entry applies to an address or name", args: ["ip_or_domain"], handler: shellRange },
]);

module.unload = () => {
    unroute_outgoing();
    removeShellCommands();
};
