/** util/jid.lua (0.12) = prosody.util.jid (13). */
declare module "prosody.util.jid" {
    /** The domain part of a JID ("user@host/res" -> "host"). */
    export function host(this: void, jid: string): string | undefined;
}
