/**
 * Everything that differs between Prosody 0.12 and 13 lives here; the rest of
 * the module does not know which one it runs on.
 * Prosody 13 renamed its libraries to "prosody.*", added the
 * `s2sout-pre-connect` event and "shell-command" items. A library name can be
 * probed with require(); an event or an item type cannot, and both arrived in
 * the same release as the new names, so the library probe stands in for them.
 */
import type { NewServiceResolver, ServiceResolverLib } from "prosody.net.resolvers.service";
import type { ShellSection } from "prosody.modules.admin_shell";

function tryRequire(name: string): unknown {
    const [ok, lib] = pcall(require, name);
    return ok ? lib : undefined;
}

/** Load a Prosody library by its 13 name, falling back to the 0.12 one. */
export function require_lib<T>(name: string): T {
    const lib = tryRequire(`prosody.${name}`);
    if (lib !== undefined) return lib as T;
    return require(name) as T;
}

export const has_prefixed_libraries = tryRequire("prosody.util.stanza") !== undefined;

export type ResolverFactory = (this: void, toHost: string) => ConnectResolver | undefined;

interface PreConnectEvent {
    session: S2SSession;
    resolver: ConnectResolver;
}

let patchedService: ServiceResolverLib | undefined;
let originalServiceNew: NewServiceResolver | undefined;

/**
 * Make outgoing connections to names the factory knows go where it says,
 * never through DNS. Call once per host.
 */
export function route_outgoing(hostModule: ProsodyModule, factory: ResolverFactory): void {
    if (has_prefixed_libraries) {
        hostModule.hook<PreConnectEvent>(
            "s2sout-pre-connect",
            (event) => {
                const resolver = factory(event.session.to_host as string);
                if (resolver !== undefined) event.resolver = resolver;
            },
            100
        );
        return;
    }
    if (patchedService !== undefined) return;
    // 0.12: mod_s2s builds its resolver with service.new() right before it
    // connects and offers no event to replace it, so wrap that constructor.
    const service = require_lib<ServiceResolverLib>("net.resolvers.service");
    const original = service.new;
    service.new = (hostname, serviceName, connType, extra) => {
        const resolver = factory(hostname);
        if (resolver === undefined) return original(hostname, serviceName, connType, extra);
        // The direct-TLS ("xmpps-server") lookup has no v6.alt equivalent.
        return serviceName === "xmpp-server" ? resolver : exhausted(hostname);
    };
    patchedService = service;
    originalServiceNew = original;
}

/** Undo route_outgoing's 0.12 patch (13's hooks go away with the module). */
export function unroute_outgoing(): void {
    if (patchedService !== undefined && originalServiceNew !== undefined) {
        patchedService.new = originalServiceNew;
    }
    patchedService = undefined;
    originalServiceNew = undefined;
}

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

export interface ShellCommand {
    name: string;
    desc: string;
    args: string[];
    handler: (this: void, ...args: string[]) => LuaMultiReturn<[boolean, string] | [undefined, string]>;
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
                handler: (_self: unknown, ...rest: string[]) => handler(...rest),
            });
        }
        return () => undefined; // items leave with the module
    }
    const env = globalModule.shared("/*/admin_shell/env");
    const table = new LuaTable<string, unknown>() as unknown as ShellSection;
    for (const command of commands) {
        const handler = command.handler;
        table.set(command.name, (_self: unknown, ...rest: string[]) => handler(...rest));
    }
    env.set(section, table);
    return () => {
        if (env.get(section) === table) env.delete(section);
    };
}
