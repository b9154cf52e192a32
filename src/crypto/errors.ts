// Raised when authenticated decryption fails. Deliberately says nothing about why.
export class CryptoError extends Error {
  override readonly name = "CryptoError";
}
