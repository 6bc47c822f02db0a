// Type declarations for crc64.js: CRC-64/ECMA-182 as OSS computes x-oss-hash-crc64ecma.

/** A running CRC-64; values are unsigned decimal strings, as OSS writes them. */
export declare class Crc64 {
  update(bytes: Uint8Array): this;
  readonly value: string;
  readonly bigint: bigint;
}

/** The CRC-64 of `bytes`. */
export declare function crc64(bytes: Uint8Array): string;

/** CRC-64 of A followed by B, from CRC(A), CRC(B) and B's length in bytes. */
export declare function combine(crcA: string | bigint, crcB: string | bigint, lengthB: number): string;
