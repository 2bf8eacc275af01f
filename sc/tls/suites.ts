// The TLS 1.3 cipher suites (RFC 8446 B.4) this record layer carries: the AEAD, its key length
// and the hash of the key schedule. Only the three suites every TLS 1.3 stack offers; CCM is
// not supported (OpenSSL does not enable it by default either).

export type HashName = "sha256" | "sha384";

export interface CipherSuite {
  /** The IANA code point (ServerHello.cipher_suite). */
  readonly code: number;
  /** The IANA / OpenSSL standard name (what node:tls's getCipher().standardName says). */
  readonly name: string;
  /** node:crypto's AEAD name. */
  readonly aead: "aes-128-gcm" | "aes-256-gcm" | "chacha20-poly1305";
  readonly hash: HashName;
  /** Hash.length: the size of every secret of the key schedule. */
  readonly hashLength: number;
  readonly keyLength: number;
  /** Every TLS 1.3 AEAD takes a 12-byte nonce (RFC 8446 5.3: iv_length = max(8, N_MIN)). */
  readonly ivLength: 12;
  readonly tagLength: 16;
  /**
   * Records sealed under one key before the writer must KeyUpdate (RFC 8446 5.5: 2^24.5 full
   * records for AES-GCM; ChaCha20-Poly1305 has no practical limit, we use the same bound).
   */
  readonly recordLimit: number;
}

const AES_GCM_LIMIT = Math.floor(2 ** 24.5);

export const TLS_AES_128_GCM_SHA256: CipherSuite = {
  code: 0x1301,
  name: "TLS_AES_128_GCM_SHA256",
  aead: "aes-128-gcm",
  hash: "sha256",
  hashLength: 32,
  keyLength: 16,
  ivLength: 12,
  tagLength: 16,
  recordLimit: AES_GCM_LIMIT,
};

export const TLS_AES_256_GCM_SHA384: CipherSuite = {
  code: 0x1302,
  name: "TLS_AES_256_GCM_SHA384",
  aead: "aes-256-gcm",
  hash: "sha384",
  hashLength: 48,
  keyLength: 32,
  ivLength: 12,
  tagLength: 16,
  recordLimit: AES_GCM_LIMIT,
};

export const TLS_CHACHA20_POLY1305_SHA256: CipherSuite = {
  code: 0x1303,
  name: "TLS_CHACHA20_POLY1305_SHA256",
  aead: "chacha20-poly1305",
  hash: "sha256",
  hashLength: 32,
  keyLength: 32,
  ivLength: 12,
  tagLength: 16,
  recordLimit: AES_GCM_LIMIT,
};

export const CIPHER_SUITES: readonly CipherSuite[] = [
  TLS_AES_128_GCM_SHA256,
  TLS_AES_256_GCM_SHA384,
  TLS_CHACHA20_POLY1305_SHA256,
];

/** The suite by its standard name or code point; undefined for anything else (TLS 1.2 suites, CCM). */
export function cipherSuite(nameOrCode: string | number): CipherSuite | undefined {
  return CIPHER_SUITES.find((s) => s.name === nameOrCode || s.code === nameOrCode);
}
