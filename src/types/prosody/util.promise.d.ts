/** util/promise.lua (0.12) = prosody.util.promise (13). */
declare module "prosody.util.promise" {
    export function reject(this: void, reason: unknown): unknown;
}
