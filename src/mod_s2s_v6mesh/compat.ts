/**
 * Everything that differs between Prosody 0.12 and 13 lives here; the rest of
 * the module does not know which one it runs on.
 * Prosody 13 renamed its libraries to "prosody.*", added the
 * `s2sout-pre-connect` event and "shell-command" items. A library name can be
 * probed with require(); an event or an item type cannot, and both arrived in
 * the same release as the new names, so the library probe stands in for them.
 *
 * Prosody 0.12 on PUC Lua 5.1 replaces `require` with a function that reads
 * its caller's environment (getfenv(2)); a tail call into it has none and
 * fails. So a call to require is never the last expression of a return here:
 * its result goes into a local first (spec/sandbox_spec.lua checks every file).
 */
import type { NewServiceResolver, ServiceResolverLib } from "prosody.net.resolvers.service";
import type { BasicResolverLib, NewBasicResolver } from "prosody.net.resolvers.basic";
import type { AdnsLib, DnsHandler, DnsResolver } from "prosody.net.adns";
import type { ShellSection } from "prosody.modules.admin_shell";
import type { ShellCommand } from "./shell";

function tryRequire(name: string): unknown {
    const [ok, lib] = pcall(require, name);
    return ok ? lib : undefined;
}

/** Load a Prosody library by its 13 name, falling back to the 0.12 one. */
export function require_lib<T>(name: string): T {
    let lib = tryRequire(`prosody.${name}`);
    if (lib === undefined) lib = require(name);
    return lib as T;
}

export const has_prefixed_libraries = tryRequire("prosody.util.stanza") !== undefined;

/** A resolver with no targets. */
export function exhausted(hostname: string, why?: string): ConnectResolver {
    return {
        hostname,
        last_error: why,
        next(callback) {
            callback();
        },
    };
}

/**
 * Where an outgoing s2s connection from `fromHost` (undefined when unknown)
 * to `toHost` goes: a resolver, or undefined to leave the name to Prosody.
 */
export type ConnectTarget = (this: void, fromHost: string | undefined, toHost: string) => ConnectResolver | undefined;

interface PreConnectEvent {
    session: S2SSession;
    resolver: ConnectResolver;
}

/**
 * Process-wide routing state. It lives in a table shared across reloads of
 * the module (module:shared), so a new instance takes over the 0.12 resolver
 * patch from the old one instead of wrapping the wrapper.
 */
export interface RoutingState {
    /** What the 0.12 service.new wrapper asks; swapped on reload. */
    target?: ConnectTarget;
    /** The 0.12 service.new wrapper of earlier versions of this module (removed by gate_dns). */
    service?: ServiceResolverLib;
    original?: NewServiceResolver;
    wrapper?: NewServiceResolver;
    /** 0.12: the sending host of the outgoing session being set up right now. */
    pending?: S2SSession;
    /** What the DNS gate asks (see gate_dns); swapped on reload. */
    gate?: DnsGate;
    /** The library fields gate_dns replaced, to put back on unload. */
    patches?: LuaTable<number, Patch>;
    /** The connection types bound_connection_type added, and the table they are in (LuaSocket's). */
    bound?: LuaTable<string, LuaTable<string, unknown>>;
}

/**
 * The last gate's policy: `refusal` says why a name must not reach DNS (or
 * undefined), `log` tells the operator that something tried.
 */
export interface DnsGate {
    refusal: (this: void, name: string) => string | undefined;
    log: (this: void, where: string, name: string, why: string) => void;
}

interface Patch {
    lib: LuaTable<string, unknown>;
    key: string;
    original: unknown;
    wrapper: unknown;
}

/**
 * Outgoing connections to names the target knows go where it says, never
 * through DNS. On 13 that is a hook on each host (see hook_host_routing); on
 * 0.12 mod_s2s builds its resolver with service.new() right before it
 * connects and offers no event to replace it, so the service.new wrapper of
 * gate_dns asks `state.target` there.
 */
export function route_outgoing(state: RoutingState, target: ConnectTarget): void {
    state.target = target;
}

/** A resolver without targets for a name the gate refuses: its use is logged. */
function refusedResolver(state: RoutingState, where: string, hostname: string, why: string): ConnectResolver {
    return {
        hostname,
        last_error: why,
        next(callback) {
            if (state.gate !== undefined) state.gate.log(where, hostname, why);
            callback();
        },
    };
}

function refusalOf(state: RoutingState, name: unknown): string | undefined {
    if (type(name) !== "string" || state.gate === undefined) return undefined;
    return state.gate.refusal(name as string);
}

/** Replace lib[key] with wrapper, once per process; remembered for unroute_outgoing. */
function patch(state: RoutingState, lib: unknown, key: string, wrapper: unknown): void {
    const table = lib as LuaTable<string, unknown>;
    if (type(table) !== "table" || table.get(key) === undefined) return;
    const patches = state.patches ?? new LuaTable<number, Patch>();
    state.patches = patches;
    patches.set(patches.length() + 1, { lib: table, key, original: table.get(key), wrapper });
    table.set(key, wrapper);
}

type Lookup = (this: void, handler: DnsHandler, qname: string, qtype?: string, qclass?: string) => unknown;

/** A lookup that answers refused names with an error (and sends nothing), and passes the rest to `ask`. */
function gatedLookup(state: RoutingState, ask: Lookup): Lookup {
    return (handler, qname, qtype, qclass) => {
        const why = refusalOf(state, qname);
        if (why === undefined) return ask(handler, qname, qtype, qclass);
        state.gate?.log("DNS lookup", qname, why);
        handler(undefined, why);
        return undefined;
    };
}

/** A DNS resolver object that answers refused names with an error and asks DNS for the rest. */
function gatedDnsResolver(state: RoutingState, inner: DnsResolver, promiseLib: { reject(this: void, why: unknown): unknown }): DnsResolver {
    const lookup = gatedLookup(state, (handler, qname, qtype, qclass) => inner.lookup(handler, qname, qtype, qclass));
    const gated = {
        lookup(this: DnsResolver, handler: DnsHandler, qname: string, qtype?: string, qclass?: string): unknown {
            return lookup(handler, qname, qtype, qclass);
        },
        lookup_promise(this: DnsResolver, qname: string, qtype?: string, qclass?: string): unknown {
            const why = refusalOf(state, qname);
            if (why === undefined && inner.lookup_promise !== undefined) return inner.lookup_promise(qname, qtype, qclass);
            state.gate?.log("DNS lookup", qname, why as string);
            return promiseLib.reject(why);
        },
    };
    return setmetatable(gated, { __index: inner }) as unknown as DnsResolver;
}

/**
 * The last gate (SPEC 3.2), on every build: whatever path leads there, no
 * DNS-based resolver of the process is asked a name that `gate.refusal`
 * refuses. Prosody's resolvers (net.resolvers.service and .basic) hand out,
 * for such a name, a resolver without targets whose use is logged; the DNS
 * API under them (net.adns, or net.unbound in its place) answers it with an
 * error and sends nothing. The libraries are patched once per process and
 * ask `state.gate` (and on 0.12 `state.target`), which a reload swaps.
 */
export function gate_dns(state: RoutingState, gate: DnsGate): void {
    state.gate = gate;
    if (state.patches !== undefined) return;
    const service = require_lib<ServiceResolverLib>("net.resolvers.service");
    // Reloaded over a version of this module that wrapped service.new itself.
    if (state.wrapper !== undefined && service.new === state.wrapper && state.original !== undefined) service.new = state.original;
    state.service = undefined;
    state.original = undefined;
    state.wrapper = undefined;
    const originalService = service.new;
    const serviceWrapper: NewServiceResolver = (hostname, serviceName, connType, extra) => {
        if (!has_prefixed_libraries) {
            const pending = state.pending;
            state.pending = undefined;
            const fromHost = pending !== undefined && pending.to_host === hostname ? pending.from_host : undefined;
            const route = state.target;
            const resolver = route === undefined ? undefined : route(fromHost, hostname);
            // The direct-TLS ("xmpps-server") lookup has no v6.alt equivalent.
            if (resolver !== undefined) return serviceName === "xmpp-server" ? resolver : exhausted(hostname);
        }
        const why = refusalOf(state, hostname);
        if (why !== undefined) return refusedResolver(state, `${serviceName} resolver`, hostname, why);
        return originalService(hostname, serviceName, connType, extra);
    };
    patch(state, service, "new", serviceWrapper);
    const basic = require_lib<BasicResolverLib>("net.resolvers.basic");
    const originalBasic = basic.new;
    const basicWrapper: NewBasicResolver = (hostname, port, connType, extra) => {
        const why = refusalOf(state, hostname);
        if (why !== undefined) return refusedResolver(state, "address resolver", hostname, why);
        return originalBasic(hostname, port, connType, extra);
    };
    patch(state, basic, "new", basicWrapper);
    const adns = require_lib<AdnsLib>("net.adns");
    const promiseLib = require_lib<{ reject(this: void, why: unknown): unknown }>("util.promise");
    const originalResolver = adns.resolver;
    patch(state, adns, "resolver", () => gatedDnsResolver(state, originalResolver(), promiseLib));
    if (adns.lookup !== undefined) patch(state, adns, "lookup", gatedLookup(state, adns.lookup));
}

/**
 * The connection type that makes an outgoing connection leave from
 * `address`. Prosody has no bind option; but a resolver hands net.connect a
 * connection type ("tcp6"), and server.addclient creates the socket with
 * socket[type]() on every backend (epoll, select, event) of 0.12, 13 and
 * trunk. So the type is a constructor of our own in LuaSocket's table: a tcp6
 * socket bound to `address`, which keeps its bind through the non-blocking
 * connect. A bind that fails fails that attempt; no other source is tried.
 */
export function bound_connection_type(state: RoutingState, socket: typeof import("socket"), address: string): string {
    const key = `tcp6 from [${address}]`;
    const types = socket as unknown as LuaTable<string, unknown>;
    const bound = state.bound ?? new LuaTable<string, LuaTable<string, unknown>>();
    state.bound = bound;
    if (types.get(key) === undefined) {
        types.set(key, () => {
            const [sock, err] = socket.tcp6();
            if (sock === undefined) return $multi(undefined, err);
            const [ok, bindErr] = sock.bind(address, 0);
            if (ok === undefined) {
                sock.close();
                return $multi(undefined, `cannot send from [${address}]: ${bindErr}`);
            }
            return $multi(sock);
        });
        bound.set(key, types);
    }
    return key;
}

/** Undo route_outgoing and gate_dns: Prosody's own resolvers again, as before the module. */
export function unroute_outgoing(state: RoutingState): void {
    if (state.patches !== undefined) {
        for (const [, p] of state.patches) {
            if (p.lib.get(p.key) === p.wrapper) p.lib.set(p.key, p.original);
        }
    }
    state.patches = undefined;
    if (state.bound !== undefined) {
        for (const [key, socket] of state.bound) socket.delete(key);
    }
    state.bound = undefined;
    state.gate = undefined;
    state.target = undefined;
    state.service = undefined;
    state.original = undefined;
    state.wrapper = undefined;
    state.pending = undefined;
}

/** Hook what routing needs on one host's events. */
export function hook_host_routing(globalModule: ProsodyModule, events: ProsodyEvents, state: RoutingState): void {
    if (has_prefixed_libraries) {
        globalModule.hook_object_event<PreConnectEvent>(
            events,
            "s2sout-pre-connect",
            (event) => {
                const route = state.target;
                const session = event.session;
                const resolver = route === undefined ? undefined : route(session.from_host, session.to_host as string);
                if (resolver !== undefined) event.resolver = resolver;
            },
            100
        );
        return;
    }
    // 0.12 fires s2sout-created right before it calls service.new (same
    // function, no yield between): remember whose connection it is.
    globalModule.hook_object_event<{ session: S2SSession }>(
        events,
        "s2sout-created",
        (event) => {
            state.pending = event.session;
        },
        -1000
    );
}

/**
 * Raw handlers on a host's events that outlive the module: they keep .v6.alt
 * routing closed while a reload is under way, or after one failed. `route`
 * answers route/remote; `connect` gives the resolver for a connection that
 * was already being set up (13; on 0.12 the service.new wrapper stays and
 * asks `state.target`, which the caller sets to the same closed answer).
 * Returns a function that removes them.
 */
export function guard_host_routing(
    events: ProsodyEvents,
    route: (this: void, event: RouteEvent) => unknown,
    connect: (this: void, toHost: string) => ConnectResolver | undefined
): (this: void) => void {
    const routeHandler = (event: RouteEvent) => route(event);
    events.add_handler("route/remote", routeHandler, 100);
    if (!has_prefixed_libraries) return () => events.remove_handler("route/remote", routeHandler);
    const connectHandler = (event: PreConnectEvent) => {
        const resolver = connect(event.session.to_host as string);
        if (resolver !== undefined) event.resolver = resolver;
    };
    events.add_handler("s2sout-pre-connect", connectHandler, 100);
    return () => {
        events.remove_handler("route/remote", routeHandler);
        events.remove_handler("s2sout-pre-connect", connectHandler);
    };
}

/** What a shell command is called on (both versions): the section, with the shell session. */
interface ShellSelf {
    session?: { print(this: void, line: string): void };
}

function shellPrint(self: ShellSelf | undefined): (this: void, line: string) => void {
    const session = type(self) === "table" ? (self as ShellSelf).session : undefined;
    return (line) => {
        if (session !== undefined) session.print(line);
    };
}

/**
 * Add `prosodyctl shell SECTION NAME ARGS` commands: shell-command items on
 * 13, entries in mod_admin_shell's shared command table on 0.12. Returns a
 * function that removes what it added.
 */
export function add_shell_commands(
    globalModule: ProsodyModule,
    section: string,
    sectionDesc: string,
    commands: ShellCommand[]
): (this: void) => void {
    if (has_prefixed_libraries) {
        for (const command of commands) {
            const args: { name: string; type: string }[] = [];
            for (const arg of command.args) args.push({ name: arg, type: "string" });
            const handler = command.handler;
            globalModule.add_item("shell-command", {
                section,
                section_desc: sectionDesc,
                name: command.name,
                desc: command.desc,
                args,
                handler: (self: ShellSelf | undefined, ...rest: unknown[]) => handler(shellPrint(self), ...rest),
            });
        }
        return () => undefined; // items leave with the module
    }
    const env = globalModule.shared("/*/admin_shell/env");
    const table = new LuaTable<string, unknown>() as unknown as ShellSection;
    for (const command of commands) {
        const handler = command.handler;
        table.set(command.name, (self: ShellSelf | undefined, ...rest: unknown[]) => handler(shellPrint(self), ...rest));
    }
    env.set(section, table);
    return () => {
        if (env.get(section) === table) env.delete(section);
    };
}
