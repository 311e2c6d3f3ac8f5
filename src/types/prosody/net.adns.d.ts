/**
 * net/adns.lua (0.12) = prosody.net.adns (13): the asynchronous DNS API every
 * resolver of Prosody asks (net.unbound takes its place where lua-unbound is installed).
 */
declare module "prosody.net.adns" {
    export type DnsHandler = (this: void, answer?: unknown, err?: string) => void;
    export interface DnsResolver {
        lookup(this: DnsResolver, handler: DnsHandler, qname: string, qtype?: string, qclass?: string): unknown;
        lookup_promise?(this: DnsResolver, qname: string, qtype?: string, qclass?: string): unknown;
    }
    export interface AdnsLib {
        resolver: (this: void) => DnsResolver;
        lookup?: (this: void, handler: DnsHandler, qname: string, qtype?: string, qclass?: string) => unknown;
    }
}
