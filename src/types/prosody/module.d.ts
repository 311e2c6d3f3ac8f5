/** The `module` object Prosody gives every plugin (core/moduleapi.lua). */

type EventHandler<E> = (this: void, event: E) => unknown;

interface ProsodyLogger {
    (this: void, level: "debug" | "info" | "warn" | "error", message: string, ...args: unknown[]): void;
}

interface ProsodyShellCommand {
    section: string;
    section_desc: string;
    name: string;
    desc: string;
    args: { name: string; type: string }[];
    handler: (this: void, self: unknown, ...args: string[]) => LuaMultiReturn<[boolean, string] | [undefined, string]>;
}

interface ProsodyModule {
    readonly name: string;
    readonly host: string;
    /** Set by Prosody while the module is being reloaded. */
    readonly reloading?: boolean;
    /** Lifecycle callbacks a module may define. */
    load?: (this: void) => void;
    unload?: (this: void) => void;
    add_host?: (this: void, hostModule: ProsodyModule) => void;

    set_global(this: ProsodyModule): void;
    log(this: ProsodyModule, level: "debug" | "info" | "warn" | "error", message: string, ...args: unknown[]): void;
    hook<E>(this: ProsodyModule, event: string, handler: EventHandler<E>, priority?: number): void;
    /** Hook another object's events (a host's); removed when the module unloads. */
    hook_object_event<E>(this: ProsodyModule, object: ProsodyEvents, event: string, handler: EventHandler<E>, priority?: number): void;
    /** The same module seen from another host: its options, its send(). */
    context(this: ProsodyModule, host: string): ProsodyModule;
    /** Call back after `delay` seconds; a number returned schedules it again. Stops when the module unloads. */
    add_timer(this: ProsodyModule, delay: number, callback: (this: void) => number | undefined): unknown;
    unhook<E>(this: ProsodyModule, event: string, handler: EventHandler<E>): void;
    fire_event(this: ProsodyModule, event: string, data: unknown): unknown;
    get_option(this: ProsodyModule, name: string, fallback?: unknown): unknown;
    get_option_boolean(this: ProsodyModule, name: string, fallback?: boolean): boolean | undefined;
    add_item(this: ProsodyModule, key: string, item: unknown): void;
    shared(this: ProsodyModule, path: string): LuaTable<string, unknown>;
    send(this: ProsodyModule, stanza: Stanza): void;
    /**
     * A metric family of core/statsmanager (served by mod_http_openmetrics as
     * prosody_mod_NAME__METRIC); a do-nothing object when statistics are off.
     */
    metric(this: ProsodyModule, type: "counter" | "gauge", name: string, unit: string, description: string, labels: string[]): MetricFamily;
}

interface MetricFamily {
    with_labels(this: MetricFamily, ...values: string[]): Metric;
}

interface Metric {
    add(this: Metric, amount: number): void;
}

declare const module: ProsodyModule;

/** util/events.lua objects: prosody.events and every host's events. */
interface ProsodyEvents {
    add_handler(this: void, event: string, handler: EventHandler<never>, priority?: number): void;
    remove_handler(this: void, event: string, handler: EventHandler<never>): void;
}

/** An entry of prosody.hosts: a VirtualHost ("local") or a Component ("component"). */
interface ProsodyHost {
    type: string;
    host: string;
    events: ProsodyEvents;
}

/** The `prosody` global (core/startup). */
interface ProsodyGlobal {
    hosts: LuaTable<string, ProsodyHost>;
    version: string;
}

/** What route/remote handlers get (core/stanza_router, mod_s2s, mod_dialback). */
interface RouteEvent {
    from_host: string;
    to_host: string;
    stanza: Stanza;
}
declare const prosody: ProsodyGlobal;

/** util.stanza objects, as far as this module touches them. */
interface Stanza {
    name: string;
    attr: { from?: string; to?: string; type?: string; id?: string };
}

/** What net.connect asks a resolver for (net/resolvers/*.lua). */
interface ConnectResolver {
    hostname: string;
    last_error?: string;
    next(
        this: ConnectResolver,
        callback: (this: void, connType?: string, ip?: string, port?: number, extra?: unknown) => void
    ): void;
}

/** Fields of an s2s session this module reads or sets (mod_s2s). */
interface S2SSession {
    direction: "incoming" | "outgoing";
    type: string;
    ip?: string;
    from_host?: string;
    to_host?: string;
    secure?: boolean;
    encrypted?: boolean;
    cert_chain_status?: "valid" | "invalid";
    cert_identity_status?: "valid" | "invalid";
    authenticated_remote?: boolean;
    /** mod_tls's TLS context for the session; false: no TLS on this one. */
    ssl_ctx?: unknown;
    conn?: { ip(this: void): string | undefined } | { ip(): string | undefined };
    log: ProsodyLogger;
    close(this: S2SSession, reason: { condition: string; text: string }, remoteReason?: unknown, localReason?: string): void;
    send(this: void, stanza: Stanza): unknown;
    /** mod_s2s's stand-in session for bounces: no connection, no log. */
    dummy?: boolean;
    /** mod_s2s: hosts an incoming stream is authenticated for. */
    hosts?: LuaTable<string, { authed?: boolean }>;
    /** Set by this module on the sessions it has looked at. */
    v6mesh?: MeshSessionState;
}

/** What this module remembers on an s2s session (it outlives reloads). */
interface MeshSessionState {
    /** Peer address, RFC 5952 text, once known. */
    address?: string;
    /** Without TLS, by a use_tls = false range. */
    plaintext: boolean;
    /** Remote domains whose certificate (or, without TLS, address) only this module vouched for. */
    trusted: LuaTable<string, boolean>;
    /** Delivery verdicts per "localhost remote-domain", valid for one settings epoch. */
    verdicts?: LuaTable<string, string | false>;
    epoch?: object;
}
