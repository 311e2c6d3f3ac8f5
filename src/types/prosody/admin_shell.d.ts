/**
 * mod_admin_shell's command table, shared as "/*\/admin_shell/env": each key
 * is a section (`v6alt`), each section a table of methods called as
 * `v6alt:get_domain(...)`. Prosody 13 fills it from "shell-command" items;
 * on 0.12 modules write to it directly.
 */
declare module "prosody.modules.admin_shell" {
    export type ShellSection = LuaTable<string, (this: void, self: unknown, ...args: string[]) => LuaMultiReturn<[boolean | undefined, string]>>;
}
