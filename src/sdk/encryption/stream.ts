// Streaming encryption and decryption: Node Transform streams with back-pressure and memory bounded
// by about one frame, whatever the message size. The decryptor releases a frame's plaintext only
// after that frame's tag verifies, and fails (never ends quietly) when the message is cut short or,
// for signed suites, when the footer signature does not verify.
//
// The code lives in encrypt-stream.ts, decrypt-stream.ts and stream-frames.ts; this entry keeps
// the module's exports where importers find them.

export { DecryptStream, decryptStream, type DecryptOptions } from "./decrypt-stream.js";
export { EncryptStream, encryptStream, type EncryptOptions } from "./encrypt-stream.js";
export type { MessageInfo } from "./stream-frames.js";
