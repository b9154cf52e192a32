// Raised when authenticated decryption fails. Deliberately says nothing about why.
export class CryptoError extends Error {
  override readonly name = "CryptoError";
}

/** Bytes that are not a well-formed ciphertext of the format asked for (keys/blob.ts, pq-ciphertext.ts). */
export class BlobFormatError extends Error {
  override readonly name = "BlobFormatError";
}
