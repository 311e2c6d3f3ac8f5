/** util/stanza.lua (0.12) = prosody.util.stanza (13). */
declare module "prosody.util.stanza" {
    export function error_reply(this: void, original: Stanza, errorType: string, condition: string, text?: string): Stanza;
}
