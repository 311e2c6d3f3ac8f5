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
    service?: ServiceResolverLib;
    original?: NewServiceResolver;
    wrapper?: NewServiceResolver;
    /** 0.12: the sending host of the outgoing session being set up right now. */
    pending?: S2SSession;
}

/**
 * Outgoing connections to names the target knows go where it says, never
 * through DNS. On 13 that is a hook on each host (see hook_host_routing); on
 * 0.12 mod_s2s builds its resolver with service.new() right before it
 * connects and offers no event to replace it, so that constructor is wrapped
 * once per process and asks `state.target`.
 */
export function route_outgoing(state: RoutingState, target: ConnectTarget): void {
    state.target = target;
    if (has_prefixed_libraries) return;
    const service = require_lib<ServiceResolverLib>("net.resolvers.service");
    if (state.wrapper !== undefined && service.new === state.wrapper) return;
    const original = service.new;
    const wrapper: NewServiceResolver = (hostname, serviceName, connType, extra) => {
        const pending = state.pending;
        state.pending = undefined;
        const fromHost = pending !== undefined && pending.to_host === hostname ? pending.from_host : undefined;
        const route = state.target;
        const resolver = route === undefined ? undefined : route(fromHost, hostname);
        if (resolver === undefined) return original(hostname, serviceName, connType, extra);
        // The direct-TLS ("xmpps-server") lookup has no v6.alt equivalent.
        return serviceName === "xmpp-server" ? resolver : exhausted(hostname);
    };
    service.new = wrapper;
    state.service = service;
    state.original = original;
    state.wrapper = wrapper;
}

/** Undo route_outgoing: Prosody's own resolver again, as before the module. */
export function unroute_outgoing(state: RoutingState): void {
    if (state.service !== undefined && state.original !== undefined && state.service.new === state.wrapper) {
        state.service.new = state.original;
    }
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
                handler: (_self: unknown, ...rest: unknown[]) => handler(...rest),
            });
        }
        return () => undefined; // items leave with the module
    }
    const env = globalModule.shared("/*/admin_shell/env");
    const table = new LuaTable<string, unknown>() as unknown as ShellSection;
    for (const command of commands) {
        const handler = command.handler;
        table.set(command.name, (_self: unknown, ...rest: unknown[]) => handler(...rest));
    }
    env.set(section, table);
    return () => {
        if (env.get(section) === table) env.delete(section);
    };
}
