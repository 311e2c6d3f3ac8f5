/** net/server.lua (0.12) = prosody.net.server (13): the event loop, the same calls in both. */
declare module "prosody.net.server" {
    export interface Connection {
        ip(this: Connection): string | undefined;
        write(this: Connection, data: string): void;
        /** Close once the send buffer is written out (at once when it is empty). */
        close(this: Connection): void;
        /** server_epoll: close now, dropping unsent data (close() flushes first). */
        destroy?(this: Connection): void;
        /** Stop reading from the socket (data waits in the kernel); resume() starts again. */
        pause(this: Connection): void;
        resume(this: Connection): void;
    }
    export interface Listeners {
        onconnect?(this: void, conn: Connection): void;
        onincoming?(this: void, conn: Connection, data: string): void;
        /** The send buffer is empty: everything written has gone to the socket. */
        ondrain?(this: void, conn: Connection): void;
        ondisconnect?(this: void, conn: Connection, err?: string): void;
    }
    export interface Watcher {
        close(this: Watcher): void;
    }
    /** A TCP listener; config.read_size: bytes read at a time. */
    export function listen(
        this: void,
        address: string,
        port: number,
        listeners: Listeners,
        config?: { read_size?: number }
    ): LuaMultiReturn<[Connection, undefined] | [undefined, string]>;
    /** Call onreadable whenever a (LuaSocket) socket can be read. */
    export function watchfd(this: void, socket: unknown, onreadable: (this: void) => void, onwritable?: (this: void) => void): Watcher;
}
