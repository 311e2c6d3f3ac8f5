/** net/resolvers/service.lua: the SRV-then-AAAA/A resolver mod_s2s uses for outgoing connections. */
declare module "prosody.net.resolvers.service" {
    export type NewServiceResolver = (
        this: void,
        hostname: string,
        service: string,
        connType: string,
        extra?: unknown
    ) => ConnectResolver;
    export interface ServiceResolverLib {
        new: NewServiceResolver;
    }
}
