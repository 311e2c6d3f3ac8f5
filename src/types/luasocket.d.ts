/**
 * The parts of LuaSocket (Debian lua-socket, 3.x) that v6alt-dnsd uses.
 * Every call here is non-blocking once settimeout(0) has been called: a call
 * that would block returns nil, "timeout" (and, for receive/send, how far it got).
 */
declare module "socket" {
    /** A UDP socket (socket.udp4() / socket.udp6(); udp6 sets IPV6_V6ONLY). */
    export interface UdpSocket {
        setsockname(this: UdpSocket, address: string, port: number): LuaMultiReturn<[number, undefined] | [undefined, string]>;
        settimeout(this: UdpSocket, seconds: number): void;
        /** One datagram, its source address (numeric text) and port; or nil, "timeout". */
        receivefrom(this: UdpSocket, size?: number): LuaMultiReturn<[string, string, number] | [undefined, string, undefined]>;
        sendto(this: UdpSocket, data: string, address: string, port: number): LuaMultiReturn<[number, undefined] | [undefined, string]>;
        close(this: UdpSocket): void;
    }

    /** A listening TCP socket (socket.tcp4() / socket.tcp6(), then bind and listen). */
    export interface TcpServer {
        setoption(this: TcpServer, option: "reuseaddr", value: boolean): LuaMultiReturn<[number, undefined] | [undefined, string]>;
        bind(this: TcpServer, address: string, port: number): LuaMultiReturn<[number, undefined] | [undefined, string]>;
        listen(this: TcpServer, backlog: number): LuaMultiReturn<[number, undefined] | [undefined, string]>;
        settimeout(this: TcpServer, seconds: number): void;
        accept(this: TcpServer): LuaMultiReturn<[TcpClient, undefined] | [undefined, string]>;
        close(this: TcpServer): void;
    }

    /** An accepted TCP connection. */
    export interface TcpClient {
        settimeout(this: TcpClient, seconds: number): void;
        getpeername(this: TcpClient): LuaMultiReturn<[string, number, string] | [undefined, string]>;
        /**
         * Up to `size` bytes: all of them, or nil, "timeout" | "closed" | error,
         * and the bytes that did arrive.
         */
        receive(this: TcpClient, size: number): LuaMultiReturn<[string, undefined, undefined] | [undefined, string, string]>;
        /** Sends data from index i on: the index of the last byte sent; or nil, error, that index. */
        send(this: TcpClient, data: string, i?: number): LuaMultiReturn<[number, undefined, undefined] | [undefined, string, number]>;
        close(this: TcpClient): void;
    }

    export type Socket = UdpSocket | TcpServer | TcpClient;

    export function udp4(this: void): LuaMultiReturn<[UdpSocket, undefined] | [undefined, string]>;
    export function udp6(this: void): LuaMultiReturn<[UdpSocket, undefined] | [undefined, string]>;
    export function tcp4(this: void): LuaMultiReturn<[TcpServer, undefined] | [undefined, string]>;
    export function tcp6(this: void): LuaMultiReturn<[TcpServer, undefined] | [undefined, string]>;
    /** Sockets ready to read and to write (arrays, also keyed by socket), or an error ("timeout"). */
    export function select(this: void, recvt: Socket[], sendt: Socket[], timeout?: number): LuaMultiReturn<[Socket[], Socket[], string | undefined]>;
    /** Seconds since the epoch, with sub-second precision. */
    export function gettime(this: void): number;
}
