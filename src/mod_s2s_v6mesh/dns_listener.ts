/**
 * The .v6.alt resolver on Prosody's event loop (SPEC section 6, "Inside
 * Prosody"): UDP through net.server's watchfd, TCP (RFC 7766) through its
 * listen. The module gives it Prosody's pieces (net.server, LuaSocket, a
 * logger, a timer) and an answer callback; the answers and the TCP rules
 * are those of ./dns, the same as v6alt-dnsd's:
 * - replies a client leaves unread are capped (TCP_MAX_UNREAD): bytes
 *   written since the connection's send buffer last drained (net.server's
 *   ondrain). At the cap the connection is neither answered nor read
 *   (pause()); when it drains, the queries already received are answered
 *   first, then reading resumes. Nothing is dropped: every query of a
 *   client that reads gets its reply, in order.
 * - a read brings at most TCP_READ_SIZE bytes, and a connection's input
 *   holds at most TCP_MAX_INPUT;
 * - a query must arrive whole within TCP_QUERY_DEADLINE of its first byte,
 *   and a connection without a whole query or write progress for
 *   TCP_IDLE_TIMEOUT is closed;
 * - a source outside the allow list is counted apart (it never takes an
 *   allowed client's slot), gets REFUSED for its first message and is
 *   closed, and is closed after TCP_QUERY_DEADLINE whatever it does;
 * - one source holds at most TCP_MAX_PER_SOURCE connections.
 * The limits hold for all listen addresses together.
 */
import type { Connection, Listeners } from "prosody.net.server";
import type { TcpLimit, TcpState } from "./dns";
import {
    TCP_MAX_CONNECTIONS,
    TCP_MAX_PER_SOURCE,
    TCP_MAX_REFUSED,
    TCP_READ_SIZE,
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

type NetServerLib = typeof import("prosody.net.server");
type SocketLib = typeof import("socket");

/** What the listener needs from Prosody and from the module. */
export interface Context {
    server: NetServerLib;
    socket: SocketLib;
    /** module:log */
    log: (this: void, level: "debug" | "info" | "warn" | "error", message: string, ...args: unknown[]) => void;
    /** module:add_timer: calls back after `delay` seconds, again after the delay it returns, never after undefined. */
    timer: (this: void, delay: number, callback: (this: void) => number | undefined) => void;
    /** May this source ask (loopback and the allow list)? */
    allowed: (this: void, ip: string) => boolean;
    /** The reply to one message from `ip` (REFUSED for a source that may not ask), or undefined. */
    answer: (this: void, message: string, ip: string) => string | undefined;
}

/** One TCP client. */
interface Client {
    conn: Connection;
    ip: string;
    state: TcpState;
    /** Reading is paused (conn.pause()). */
    paused: boolean;
    /** Answering right now: a drain during a write only counts, the running loop goes on. */
    busy: boolean;
    /** conn.close() was called: it goes once its last reply is sent (or at its deadline). */
    closing: boolean;
}

/** Seconds between checks of the TCP deadlines. */
const TICK = 1;
/** Datagrams read from a UDP socket per wake-up, so one busy client cannot hog the loop. */
const UDP_BURST = 64;

/**
 * Serve DNS on each [address, port], UDP and TCP; returns a function that
 * closes it all. Errors opening an address are logged, the others still open.
 */
export function listen(ctx: Context, addresses: [string, number][]): (this: void) => void {
    const closers: ((this: void) => void)[] = [];
    const clients = new LuaTable<Connection, Client>();
    const pool = tcp_pool();
    const warned = new LuaTable<TcpLimit, number>();
    const gettime = ctx.socket.gettime;
    let ticking = false;
    let closed = false;

    /** The connection ended or is being ended: it no longer counts. */
    function forget(client: Client): void {
        if (clients.get(client.conn) !== client) return;
        clients.delete(client.conn);
        tcp_release(pool, client.ip, client.state.allowed);
    }

    /** Close now, dropping unsent replies (close() would wait for a client that does not read). */
    function drop(client: Client): void {
        forget(client);
        const conn = client.conn as Connection & { force_close?: (this: Connection) => void };
        if (conn.destroy !== undefined) conn.destroy(); // server_epoll
        else if (conn.force_close !== undefined) conn.force_close(); // server_select
        else conn.close();
    }

    function tick(): number | undefined {
        if (closed) {
            ticking = false;
            return undefined;
        }
        const now = gettime();
        const expired: Client[] = [];
        let open = 0;
        for (const [, client] of clients) {
            if (tcp_expired(client.state, now) !== undefined) expired.push(client);
            else open += 1;
        }
        for (const client of expired) drop(client);
        if (open === 0) {
            ticking = false;
            return undefined;
        }
        return TICK;
    }

    /** Answer what has arrived whole, in order, up to the unread cap; then pause or resume reading. */
    function pump(client: Client): void {
        if (client.busy || client.closing) return;
        client.busy = true;
        const state = client.state;
        const conn = client.conn;
        const now = gettime();
        for (;;) {
            const message = tcp_next(state, now);
            if (message === undefined) break;
            const reply = ctx.answer(message, client.ip);
            if (reply !== undefined && reply.length <= 65535) {
                const frame = tcp_frame(reply);
                tcp_wrote(state, frame.length);
                conn.write(frame);
                // A write the send buffer cannot take ends the connection (ondisconnect).
                if (clients.get(conn) !== client) return;
            }
        }
        client.busy = false;
        if (state.done) {
            // A refused source had its one answer: closed once it is sent.
            client.closing = true;
            if (!client.paused) conn.pause();
            client.paused = true;
            conn.close();
            return;
        }
        const pause = tcp_paused(state);
        if (pause && !client.paused) conn.pause();
        else if (!pause && client.paused) conn.resume();
        client.paused = pause;
    }

    function limitReached(limit: TcpLimit, ip: string): void {
        const now = gettime();
        const last = warned.get(limit);
        const level = last === undefined || now - last >= 60 ? "warn" : "debug";
        if (level === "warn") warned.set(limit, now);
        if (limit === "source") ctx.log(level, "%d DNS connections from [%s] are open: closing its new ones (logged once a minute)", TCP_MAX_PER_SOURCE, ip);
        else if (limit === "refused") ctx.log(level, "%d DNS connections from sources outside s2s_v6mesh_dns_allow are open: closing new ones (logged once a minute)", TCP_MAX_REFUSED);
        else ctx.log(level, "%d DNS connections are open: closing new ones (logged once a minute)", TCP_MAX_CONNECTIONS);
    }

    const listeners: Listeners = {
        onconnect(conn) {
            if (closed) {
                conn.close();
                return;
            }
            const ip = conn.ip() ?? "?";
            const permitted = ctx.allowed(ip);
            const limit = tcp_admit(pool, ip, permitted);
            if (limit !== undefined) {
                limitReached(limit, ip);
                conn.close();
                return;
            }
            clients.set(conn, { conn, ip, state: tcp_state(permitted, gettime()), paused: false, busy: false, closing: false });
            if (!ticking) {
                ticking = true;
                ctx.timer(TICK, tick);
            }
        },
        onincoming(conn, data) {
            const client = clients.get(conn);
            if (client === undefined || client.closing) return;
            if (!tcp_received(client.state, data, gettime())) {
                drop(client);
                return;
            }
            pump(client);
        },
        ondrain(conn) {
            const client = clients.get(conn);
            if (client === undefined) return;
            tcp_sent(client.state, client.state.unread, gettime());
            pump(client);
        },
        ondisconnect(conn) {
            const client = clients.get(conn);
            if (client !== undefined) forget(client);
        },
    };

    for (const [address, port] of addresses) {
        const before = closers.length;
        const newUdp = string.find(address, ":", 1, true)[0] !== undefined ? ctx.socket.udp6 : ctx.socket.udp4;
        let [udp, bindErr] = newUdp();
        let bound: number | undefined;
        if (udp !== undefined) [bound, bindErr] = udp.setsockname(address, port);
        if (udp === undefined || bound === undefined) {
            ctx.log("error", "Cannot serve .v6.alt DNS on UDP [%s]:%d: %s", address, port, tostring(bindErr));
            if (udp !== undefined) udp.close();
        } else {
            const sock = udp;
            sock.settimeout(0);
            const watcher = ctx.server.watchfd(sock, () => {
                for (let i = 0; i < UDP_BURST; i++) {
                    const [message, ip, fromPort] = sock.receivefrom();
                    if (message === undefined) break;
                    const reply = ctx.answer(message, ip as string);
                    if (reply !== undefined) sock.sendto(reply, ip as string, fromPort as number);
                }
            });
            closers.push(() => {
                watcher.close();
                sock.close();
            });
        }
        const [tcp, listenErr] = ctx.server.listen(address, port, listeners, { read_size: TCP_READ_SIZE });
        if (tcp === undefined) {
            ctx.log("error", "Cannot serve .v6.alt DNS on TCP [%s]:%d: %s", address, port, tostring(listenErr));
        } else {
            closers.push(() => tcp.close());
        }
        if (closers.length > before) ctx.log("info", "Serving .v6.alt names over DNS on [%s]:%d", address, port);
    }

    return () => {
        closed = true;
        for (const close of closers) close();
        const open: Client[] = [];
        for (const [, client] of clients) open.push(client);
        for (const client of open) drop(client);
    };
}
