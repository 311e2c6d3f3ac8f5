/** util/net.so (0.12) = prosody.util.net (13): the host's interface addresses. */
declare module "prosody.util.net" {
    export function local_addresses(this: void, family?: "ipv4" | "ipv6" | "both", allowLinkLocal?: boolean): string[] | undefined;
}
