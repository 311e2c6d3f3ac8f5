/** net/resolvers/basic.lua: the A/AAAA (and TLSA) resolver behind the service resolver. */
declare module "prosody.net.resolvers.basic" {
    export type NewBasicResolver = (this: void, hostname: string, port: number, connType?: string, extra?: unknown) => ConnectResolver;
    export interface BasicResolverLib {
        new: NewBasicResolver;
    }
}
