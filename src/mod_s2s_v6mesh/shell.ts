/**
 * The `prosodyctl shell v6alt ...` commands (SPEC section 3). Pure logic: the
 * glue hands in how to find a host's settings, so the commands and their
 * argument errors are tested directly.
 */
import * as v6alt from "./v6alt";
import { decide, describe, Policy } from "./policy";

export type ShellResult = LuaMultiReturn<[boolean, string] | [undefined, string]>;

/** Where a command prints lines before its result line (the shell session). */
export type ShellPrint = (this: void, line: string) => void;

export interface ShellCommand {
    name: string;
    desc: string;
    args: string[];
    handler: (this: void, print: ShellPrint, ...args: unknown[]) => ShellResult;
}

/** What `v6alt status` shows, as the glue sees the running server. */
export interface StatusReport {
    /** Why .v6.alt federation is closed, when it is. */
    closed?: string;
    /** Every address of the machine, its name, and the hosts under that name. */
    addresses: { address: string; name: string; hosts: string[] }[];
    /** Hosts that send from no address of their own: a DNS name, or an address not on the machine. */
    others: { host: string; address?: string }[];
    /** Hosts whose .v6.alt federation a bad option of their own closed, and why. */
    closed_hosts: { host: string; why: string }[];
    /** The DNS listener's addresses ("[::1]:5390"); empty when it is off. */
    dns_listen: string[];
    /** Refusals since the module loaded, by reason. */
    refusals: LuaTable<string, number>;
}

/** What the commands need to know about the running server. */
export interface ShellContext {
    /** Whether a host takes non-canonical names (undefined: the global setting). */
    lax(this: void, host: string | undefined): boolean;
    /** The policy in force for a host (undefined: global), or undefined when it is no host here. */
    policy(this: void, host: string | undefined): Policy | undefined;
    status(this: void): StatusReport;
}

function fail(message: string): ShellResult {
    return $multi(undefined, message);
}

/** A one-line error when an argument is missing or not a string. */
function badArgument(command: string, what: string, value: unknown, example: string): string | undefined {
    if (type(value) === "string" && value !== "") return undefined;
    const got = value === undefined ? "nothing" : type(value) === "string" ? "an empty string" : `${tostring(value)} (a ${type(value)})`;
    return `v6alt ${command} needs ${what} as a string, got ${got}; e.g. ${example}`;
}

export function get_domain(ip: unknown): ShellResult {
    const bad = badArgument("get_domain", "an IPv6 address", ip, `v6alt:get_domain("2a00:1098:3a0::1")`);
    if (bad !== undefined) return fail(bad);
    const [name, err] = v6alt.ip_to_name(ip as string);
    if (name === undefined) return fail(err as string);
    return $multi(true, `Encoded hostname: ${name}`);
}

export function get_ip(name: unknown, lax: boolean): ShellResult {
    const bad = badArgument("get_ip", "a .v6.alt name", name, `v6alt:get_ip("fiabbgadu-e.v6.alt")`);
    if (bad !== undefined) return fail(bad);
    const read = v6alt.mesh_name(name as string) ?? (name as string);
    const [ip, err] = v6alt.name_to_ip(read, lax);
    if (ip === undefined) return fail(v6alt.read_failure(name as string, read, err as string));
    return $multi(true, read === name ? `IP address: ${ip}` : `IP address: ${ip} (${name} is read as ${read})`);
}

export function range(ctx: ShellContext, target: unknown, host: unknown): ShellResult {
    const bad = badArgument("range", "an IPv6 address or a .v6.alt name", target, `v6alt:range("200::1")`);
    if (bad !== undefined) return fail(bad);
    if (host !== undefined) {
        const badHost = badArgument("range", "a host of this server (optional second argument)", host, `v6alt:range("200::1", "example.v6.alt")`);
        if (badHost !== undefined) return fail(badHost);
    }
    const hostName = host as string | undefined;
    const policy = ctx.policy(hostName);
    if (policy === undefined) return fail(`'${hostName}' is not a host of this server`);
    const text = target as string;
    let packed: string | undefined;
    let err: string | undefined;
    if (string.find(text, ":", 1, true)[0] !== undefined) [packed, err] = v6alt.parse_ip(text);
    else {
        const read = v6alt.mesh_name(text) ?? text;
        [packed, err] = v6alt.decode(read, ctx.lax(hostName));
        if (packed === undefined) err = v6alt.read_failure(text, read, err as string);
    }
    if (packed === undefined) return fail(err as string);
    const decision = decide(policy, packed);
    return $multi(true, `[${decision.address}] ${describe(decision)}`);
}

/** `v6alt status`: one line per item, then the count of lines as the result. */
export function status(report: StatusReport, print: ShellPrint): ShellResult {
    const lines: string[] = [];
    lines.push(report.closed === undefined ? ".v6.alt federation: open" : `.v6.alt federation: closed: ${report.closed}`);
    for (const entry of report.closed_hosts) lines.push(`host ${entry.host}: .v6.alt federation closed: ${entry.why}`);
    for (const entry of report.addresses) {
        const served = entry.hosts.length === 0 ? "no host" : `${entry.hosts.length === 1 ? "host" : "hosts"} ${table.concat(entry.hosts, ", ")}, sending from this address`;
        lines.push(`address [${entry.address}] = ${entry.name}: ${served}`);
    }
    for (const other of report.others) {
        lines.push(
            other.address === undefined
                ? `host ${other.host}: not a .v6.alt name; it sends from the address the kernel picks`
                : `host ${other.host}: its address [${other.address}] is not on this machine; it cannot federate`
        );
    }
    lines.push(report.dns_listen.length === 0 ? "DNS listener: off" : `DNS listener: ${table.concat(report.dns_listen, ", ")}`);
    const reasons: string[] = [];
    for (const [reason] of report.refusals) reasons.push(reason);
    table.sort(reasons);
    if (reasons.length === 0) lines.push("refused: nothing since the module loaded");
    for (const reason of reasons) lines.push(`refused (${reason}): ${report.refusals.get(reason)}`);
    for (const line of lines) print(line);
    return $multi(true, `${lines.length} lines`);
}

export function commands(ctx: ShellContext): ShellCommand[] {
    return [
        { name: "get_domain", desc: "Show the .v6.alt name of an IPv6 address", args: ["ip"], handler: (_print, ip) => get_domain(ip) },
        {
            name: "get_ip",
            desc: "Show the IPv6 address a .v6.alt name stands for",
            args: ["domain"],
            handler: (_print, name) => get_ip(name, ctx.lax(undefined)),
        },
        {
            name: "range",
            desc: "Show which s2s_v6mesh_ranges entry applies to an address or name",
            args: ["ip_or_domain"],
            handler: (_print, target, host) => range(ctx, target, host),
        },
        {
            name: "status",
            desc: "Show this server's .v6.alt names and addresses, whether federation is open, the DNS listener and the refusals",
            args: [],
            handler: (print) => status(ctx.status(), print),
        },
    ];
}
