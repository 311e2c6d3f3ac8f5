/** util/encodings (0.12) = prosody.util.encodings (13): Prosody's C string library. */
declare module "prosody.util.encodings" {
    export const idna: {
        /** IDNA ToASCII, as net.resolvers applies it before asking DNS; undefined when the name has no ASCII form. */
        to_ascii(this: void, name: string): string | undefined;
    };
}
