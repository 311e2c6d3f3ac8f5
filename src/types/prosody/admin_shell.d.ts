/**
 * mod_admin_shell's command table, shared as "/*\/admin_shell/env": each key
 * is a section (`v6alt`), each section a table of methods called as
 * `v6alt:get_domain(...)`, with `self.session` set to the shell session. Prosody 13 fills it from "shell-command" items;
 * on 0.12 modules write to it directly.
 */
declare module "prosody.modules.admin_shell" {
    /** `self` is the section as the shell session sees it: `self.session.print` prints a line. */
    export type ShellSection = LuaTable<string, (this: void, self: never, ...args: unknown[]) => LuaMultiReturn<[boolean | undefined, string]>>;
}
