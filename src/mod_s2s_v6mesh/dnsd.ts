/**
 * v6alt-dnsd (SPEC section 6, "Standalone"): the .v6.alt resolver as a
 * command, for machines that do not run Prosody. Plain Lua with LuaSocket:
 * UDP and TCP (RFC 7766) on each --listen address, one select() loop, no
 * state beyond the open TCP connections. The answers come from ./dns, the
 * same packet code as the in-Prosody listener.
 *
 * TCP: every connection has its own input and output buffers, so a client
 * that stalls (sends half a query, or never reads its replies) holds one
 * slot and never blocks the others. The limits are those of the in-Prosody
 * listener, from ./dns (TCP_*): replies left unread are capped per
 * connection (then it is neither answered nor read until it reads), a query
 * must arrive whole within a deadline, a connection without a whole query
 * or write progress is closed after the idle timeout, sources outside the
 * allow list get one REFUSED and are closed (counted apart, never in an
 * allowed client's slot), and one source holds at most a few of the slots;
 * a connection over a limit is closed at once.
 */
import type * as LuaSocket from "socket";
import type { Socket, TcpClient, TcpServer, UdpSocket } from "socket";
import type { AllowList, TcpLimit, TcpPool, TcpState } from "./dns";
import {
    TCP_MAX_CONNECTIONS,
    TCP_MAX_PER_SOURCE,
    TCP_MAX_REFUSED,
    TCP_READ_SIZE,
    allowed,
    new_allow_list,
    parse_listen,
    refuse,
    respond,
    tcp_admit,
    tcp_expired,
    tcp_frame,
    tcp_next,
    tcp_paused,
    tcp_pool,
    tcp_received,
    tcp_release,
    tcp_sent,
    tcp_state,
    tcp_wrote,
} from "./dns";

const DEFAULT_LISTEN = ["[::1]:5390", "127.0.0.1:5390"];
const DEFAULT_TTL = 3600;
const MAX_TTL = 2147483647;
/** Datagrams read from one UDP socket per turn of the loop (others get their turn too). */
const UDP_BURST = 64;
/** Remembered allow decisions for UDP sources (the table is emptied when full). */
const ALLOW_CACHE_SIZE = 4096;
/** Error lines per minute at most; the rest are counted. */
const ERRORS_PER_MINUTE = 10;

const USAGE = `Usage: v6alt-dnsd [--listen ADDR:PORT]... [--allow CIDR]... [--ttl SECONDS]

Answers DNS queries for .v6.alt names, and for the ip6.arpa names of their
addresses, from the names alone: a .v6.alt name encodes its IPv6 address.
No zone, no recursion, no state. Send it only the v6.alt domain (dnsmasq:
server=/v6.alt/::1#5390; unbound: stub-zone; systemd-resolved: ~v6.alt).

  --listen ADDR:PORT  serve UDP and TCP there: [::1]:5390 or 127.0.0.1:5390;
                      repeatable (default: [::1]:5390 and 127.0.0.1:5390).
                      [::]:5390 and 0.0.0.0:5390 work too, but on a machine
                      with several addresses list each one instead: a UDP
                      reply then always comes from the address asked
  --allow CIDR        also answer sources in this range (200::/7, or IPv4
                      such as 192.168.1.0/24); repeatable. Loopback is always
                      allowed; other sources get REFUSED.
  --ttl SECONDS       TTL of answers and of negative answers, 0..2147483647
                      (default 3600)
  --help              print this text

Needs LuaSocket (Debian: lua-socket). Logs one line to stderr when it starts;
SIGTERM or SIGINT ends it.
`;

type SocketLib = typeof LuaSocket;

interface Listen {
    address: string;
    port: number;
    /** As written: [::1]:5390 or 127.0.0.1:5390. */
    text: string;
}

interface Options {
    help: boolean;
    /** Each --listen, in order. */
    listen: Listen[];
    allowText: string[];
    allow: AllowList;
    ttl: number;
}

interface Connection {
    sock: TcpClient;
    peer: string;
    /** Input, unread replies, deadlines (./dns). */
    state: TcpState;
    /** Replies not yet sent (length-prefixed). */
    output: string;
    /** The client closed its side (or the connection failed): answer what is complete, then close. */
    eof: boolean;
}

interface Daemon {
    lib: SocketLib;
    ttl: number;
    allow: AllowList;
    udp: UdpSocket[];
    servers: TcpServer[];
    kind: LuaTable<Socket, "udp" | "server">;
    connections: LuaTable<TcpClient, Connection>;
    /** Open TCP connections, by kind and source (./dns; at most TCP_MAX_CONNECTIONS + TCP_MAX_REFUSED, well under select()'s FD_SETSIZE). */
    pool: TcpPool;
    allowCache: LuaTable<string, boolean>;
    allowCached: number;
    /** When each limit was last logged. */
    capWarned: LuaTable<TcpLimit, number>;
}

// ------------------------------------------------------------------ logging

/** Control characters (newlines included) as \ddd: every log line stays one line. */
function oneLine(text: string): string {
    const [escaped] = string.gsub(text, "%c", (c: string) => `\\${string.byte(c)}`);
    return escaped;
}

function log(message: string): void {
    io.stderr.write(`v6alt-dnsd: ${message}\n`);
}

let windowStart = 0;
let windowLogged = 0;
let windowSuppressed = 0;

/** An error or warning, at most ERRORS_PER_MINUTE lines a minute (a flood of bad packets must not flood the log). */
function logLimited(message: string): void {
    const now = os.time();
    if (now - windowStart >= 60) {
        if (windowSuppressed > 0) log(`${windowSuppressed} more errors or warnings in the last minute were not logged`);
        windowStart = now;
        windowLogged = 0;
        windowSuppressed = 0;
    }
    if (windowLogged < ERRORS_PER_MINUTE) {
        windowLogged += 1;
        log(oneLine(message));
    } else {
        windowSuppressed += 1;
    }
}

/**
 * The standalone interpreters (lua, luajit) turn SIGINT into an error
 * "interrupted!" raised in whatever Lua code runs next; every pcall here
 * passes it to this, so Ctrl-C ends the daemon instead of being logged.
 */
function endOnInterrupt(err: unknown): void {
    if (string.find(tostring(err), "interrupted!$")[0] !== undefined) os.exit(130);
}

// ------------------------------------------------------------------ options

function optionError(message: string): LuaMultiReturn<[undefined, string]> {
    return $multi(undefined, oneLine(message));
}

function parseOptions(args: string[]): LuaMultiReturn<[Options, undefined] | [undefined, string]> {
    const options: Options = { help: false, listen: [], allowText: [], allow: { ranges: [] }, ttl: DEFAULT_TTL };
    let i = 0;
    while (i < args.length) {
        const word = tostring(args[i]);
        i += 1;
        let [name, value] = string.match(word, "^(%-%-[%w%-]+)=(.*)$");
        if (name === undefined) name = word;
        if (name === "--help" || name === "-h") {
            if (value !== undefined) return optionError(`${name} takes no value`);
            options.help = true;
            continue;
        }
        if (name !== "--listen" && name !== "--allow" && name !== "--ttl") {
            const what = string.sub(word, 1, 1) === "-" ? "option" : "argument";
            return optionError(`unknown ${what} '${word}' (see v6alt-dnsd --help)`);
        }
        if (value === undefined) {
            if (i >= args.length) {
                const example = name === "--listen" ? "[::1]:5390" : name === "--allow" ? "200::/7" : "3600";
                return optionError(`${name} needs a value, e.g. ${name} ${example}`);
            }
            value = tostring(args[i]);
            i += 1;
        }
        if (name === "--listen") {
            const [address, port] = parse_listen(value);
            if (address === undefined) return optionError(`--listen: ${port}`);
            const text = string.find(address, ":", 1, true)[0] !== undefined ? `[${address}]:${port}` : `${address}:${port}`;
            options.listen.push({ address, port: port as number, text });
        } else if (name === "--allow") {
            options.allowText.push(value);
        } else {
            const ttl = string.match(value, "^%d+$")[0] !== undefined ? tonumber(value) : undefined;
            if (ttl === undefined || ttl > MAX_TTL) return optionError(`--ttl '${value}' must be a whole number of seconds from 0 to ${MAX_TTL}`);
            options.ttl = ttl;
        }
    }
    const [allow, err] = new_allow_list(options.allowText);
    if (allow === undefined) return optionError(`--allow: ${err}`);
    options.allow = allow;
    if (options.listen.length === 0) {
        for (const text of DEFAULT_LISTEN) {
            const [address, port] = parse_listen(text);
            options.listen.push({ address: address as string, port: port as number, text });
        }
    }
    return $multi(options, undefined);
}

// ------------------------------------------------------------------ answering

function isAllowed(d: Daemon, ip: string): boolean {
    const cached = d.allowCache.get(ip);
    if (cached !== undefined) return cached;
    const verdict = allowed(d.allow, ip);
    if (d.allowCached >= ALLOW_CACHE_SIZE) {
        d.allowCache = new LuaTable();
        d.allowCached = 0;
    }
    d.allowCache.set(ip, verdict);
    d.allowCached += 1;
    return verdict;
}

function reply(d: Daemon, msg: string, permitted: boolean): string | undefined {
    return permitted ? respond(msg, d.ttl) : refuse(msg);
}

/** The reply to one message, or undefined; an error in the packet code is logged, never raised. */
function answer(d: Daemon, msg: string, permitted: boolean, peer: string, transport: string): string | undefined {
    const [ok, result] = pcall(reply, d, msg, permitted);
    if (!ok) {
        endOnInterrupt(result);
        logLimited(`error answering a ${msg.length}-byte ${transport} message from ${peer}: ${tostring(result)}`);
        return undefined;
    }
    return result;
}

function serveUdp(d: Daemon, udp: UdpSocket): void {
    for (let i = 0; i < UDP_BURST; i++) {
        const [msg, ip, port] = udp.receivefrom(65535);
        if (msg === undefined) return;
        const [ok, permitted] = pcall(isAllowed, d, ip);
        if (!ok) endOnInterrupt(permitted);
        const out = answer(d, msg, ok && permitted === true, ip, "UDP");
        if (out !== undefined) udp.sendto(out, ip, port as number);
    }
}

// ------------------------------------------------------------------ TCP

function closeConnection(d: Daemon, conn: Connection): void {
    if (d.connections.get(conn.sock) === undefined) return;
    d.connections.delete(conn.sock);
    tcp_release(d.pool, conn.peer, conn.state.allowed);
    conn.sock.close();
}

/** Answers the whole messages received, in order, while the client keeps up with reading; how many. */
function answerComplete(d: Daemon, conn: Connection, now: number): number {
    const state = conn.state;
    let answered = 0;
    for (;;) {
        const msg = tcp_next(state, now);
        if (msg === undefined) break;
        answered += 1;
        const out = answer(d, msg, state.allowed, conn.peer, "TCP");
        if (out !== undefined && out.length <= 65535) {
            const frame = tcp_frame(out);
            conn.output = conn.output + frame;
            tcp_wrote(state, frame.length);
        }
    }
    return answered;
}

/** Sends what it can of conn.output without blocking; how many bytes. */
function flush(conn: Connection, now: number): number {
    if (conn.output === "") return 0;
    const [last, err, partial] = conn.sock.send(conn.output);
    const sent = last !== undefined ? last : partial !== undefined ? partial : 0;
    if (sent > 0) {
        conn.output = string.sub(conn.output, sent + 1);
        tcp_sent(conn.state, sent, now);
    }
    if (last === undefined && err !== "timeout") {
        conn.output = "";
        conn.eof = true;
    }
    return sent;
}

/**
 * Answer and send until neither makes progress; close once the client is
 * gone, or a refused source has its answer, and all is sent.
 */
function pump(d: Daemon, conn: Connection, now: number): void {
    for (;;) {
        const answered = answerComplete(d, conn, now);
        const sent = flush(conn, now);
        if (answered === 0 && sent === 0) break;
    }
    if ((conn.eof || conn.state.done) && conn.output === "") closeConnection(d, conn);
}

function readConnection(d: Daemon, conn: Connection, now: number): void {
    const [data, err, partial] = conn.sock.receive(TCP_READ_SIZE);
    const got = data !== undefined ? data : partial;
    if (got !== undefined && !tcp_received(conn.state, got, now)) {
        closeConnection(d, conn);
        return;
    }
    if (data === undefined && err !== "timeout") conn.eof = true;
    pump(d, conn, now);
}

function writeConnection(d: Daemon, conn: Connection, now: number): void {
    flush(conn, now);
    pump(d, conn, now);
}

/** The line logged (once a minute) when a limit closes new connections. */
function limitText(limit: TcpLimit, peer: string): string {
    if (limit === "source") return `${TCP_MAX_PER_SOURCE} TCP connections from ${peer} are open: closing its new ones until some end (logged once a minute)`;
    if (limit === "refused") return `${TCP_MAX_REFUSED} TCP connections from sources outside the allow list are open: closing new ones until some end (logged once a minute)`;
    return `${TCP_MAX_CONNECTIONS} TCP connections are open: closing new ones until some end (logged once a minute)`;
}

function acceptConnections(d: Daemon, server: TcpServer, now: number): void {
    for (let i = 0; i < 16; i++) {
        const [sock] = server.accept();
        if (sock === undefined) return;
        sock.settimeout(0);
        const [ip] = sock.getpeername();
        const peer = ip !== undefined ? ip : "?";
        const [checked, verdict] = pcall(isAllowed, d, peer);
        if (!checked) endOnInterrupt(verdict);
        const permitted = checked && verdict === true;
        const limit = tcp_admit(d.pool, peer, permitted);
        if (limit !== undefined) {
            sock.close();
            if (now - (d.capWarned.get(limit) ?? -60) >= 60) {
                d.capWarned.set(limit, now);
                logLimited(limitText(limit, peer));
            }
            continue;
        }
        d.connections.set(sock, { sock, peer, state: tcp_state(permitted, now), output: "", eof: false });
    }
}

/** Runs one connection step; an error closes that connection only. */
function guarded(d: Daemon, conn: Connection, step: (this: void, d: Daemon, conn: Connection, now: number) => void, now: number): void {
    const [ok, err] = pcall(step, d, conn, now);
    if (!ok) {
        endOnInterrupt(err);
        logLimited(`error on the TCP connection from ${conn.peer}: ${tostring(err)}`);
        closeConnection(d, conn);
    }
}

function expire(d: Daemon, now: number): void {
    for (const [, conn] of d.connections) {
        if (tcp_expired(conn.state, now) !== undefined) closeConnection(d, conn);
    }
}

// ------------------------------------------------------------------ main loop

function openListeners(d: Daemon, options: Options): string | undefined {
    for (const { address, port, text: label } of options.listen) {
        const v6 = string.find(address, ":", 1, true)[0] !== undefined;
        const openUdp = v6 ? d.lib.udp6 : d.lib.udp4;
        const [udp, udpErr] = openUdp();
        if (udp === undefined) return `cannot open a UDP socket for ${label}: ${udpErr}`;
        const [bound, bindErr] = udp.setsockname(address, port);
        if (bound === undefined) return `cannot listen on UDP ${label}: ${bindErr}`;
        udp.settimeout(0);
        d.udp.push(udp);
        d.kind.set(udp, "udp");
        const openTcp = v6 ? d.lib.tcp6 : d.lib.tcp4;
        const [server, tcpErr] = openTcp();
        if (server === undefined) return `cannot open a TCP socket for ${label}: ${tcpErr}`;
        server.setoption("reuseaddr", true);
        const [tcpBound, tcpBindErr] = server.bind(address, port);
        if (tcpBound === undefined) return `cannot listen on TCP ${label}: ${tcpBindErr}`;
        const [listening, listenErr] = server.listen(64);
        if (listening === undefined) return `cannot listen on TCP ${label}: ${listenErr}`;
        server.settimeout(0);
        d.servers.push(server);
        d.kind.set(server, "server");
    }
    return undefined;
}

function listenTexts(options: Options): string {
    const texts: string[] = [];
    for (const listen of options.listen) texts.push(listen.text);
    return table.concat(texts, ", ");
}

function turn(d: Daemon): string | undefined {
    const recvt: Socket[] = [];
    const sendt: Socket[] = [];
    for (const udp of d.udp) recvt.push(udp);
    for (const server of d.servers) recvt.push(server);
    for (const [sock, conn] of d.connections) {
        if (!conn.eof && !tcp_paused(conn.state)) recvt.push(sock);
        if (conn.output !== "") sendt.push(sock);
    }
    const [readable, writable, err] = d.lib.select(recvt, sendt, 1);
    const now = d.lib.gettime();
    if (readable === undefined || writable === undefined) return err !== undefined ? err : "select failed";
    for (const sock of writable) {
        const conn = d.connections.get(sock as TcpClient);
        if (conn !== undefined) guarded(d, conn, writeConnection, now);
    }
    for (const sock of readable) {
        const kind = d.kind.get(sock);
        if (kind === "udp") {
            const [ok, problem] = pcall(serveUdp, d, sock as UdpSocket);
            if (!ok) endOnInterrupt(problem);
            if (!ok) logLimited(`error on a UDP socket: ${tostring(problem)}`);
        } else if (kind === "server") {
            const [ok, problem] = pcall(acceptConnections, d, sock as TcpServer, now);
            if (!ok) endOnInterrupt(problem);
            if (!ok) logLimited(`error accepting a TCP connection: ${tostring(problem)}`);
        } else {
            const conn = d.connections.get(sock as TcpClient);
            if (conn !== undefined) guarded(d, conn, readConnection, now);
        }
    }
    expire(d, now);
    return undefined;
}

/**
 * Runs v6alt-dnsd with the command-line arguments `args` (Lua's `arg`).
 * Returns the exit code: 0 after --help, 2 for bad options, 1 when it
 * cannot listen; otherwise it serves until a signal ends the process.
 */
export function main(args: string[]): number {
    const [options, problem] = parseOptions(args !== undefined ? args : []);
    if (options === undefined) {
        log(problem as string);
        return 2;
    }
    if (options.help) {
        io.stdout.write(USAGE);
        return 0;
    }
    const [found, lib] = pcall(require, "socket");
    if (!found) {
        log(`LuaSocket is missing (Debian: apt install lua-socket): ${oneLine(tostring(lib))}`);
        return 1;
    }
    const d: Daemon = {
        lib: lib as SocketLib,
        ttl: options.ttl,
        allow: options.allow,
        udp: [],
        servers: [],
        kind: new LuaTable(),
        connections: new LuaTable(),
        pool: tcp_pool(),
        allowCache: new LuaTable(),
        allowCached: 0,
        capWarned: new LuaTable(),
    };
    const failed = openListeners(d, options);
    if (failed !== undefined) {
        log(oneLine(failed));
        return 1;
    }
    const allowText = ["loopback"];
    for (const text of options.allowText) allowText.push(text);
    log(
        oneLine(
            `answering .v6.alt and ip6.arpa on UDP and TCP ${listenTexts(options)}; ` +
                `allowed sources: ${table.concat(allowText, ", ")}; ttl ${options.ttl}; ${_VERSION}, ${tostring((lib as { _VERSION?: string })._VERSION)}`
        )
    );
    let failures = 0;
    for (;;) {
        const [ok, err] = pcall(turn, d);
        if (!ok) endOnInterrupt(err);
        const trouble = !ok ? tostring(err) : err;
        if (trouble === undefined || trouble === "timeout") {
            failures = 0;
        } else {
            failures += 1;
            logLimited(`error in the main loop: ${trouble}`);
            if (failures >= 100) {
                log("giving up after 100 failed turns of the main loop in a row");
                return 1;
            }
        }
    }
}
