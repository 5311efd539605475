// The default TLS 1.2 cipher list: ECDHE key exchange (forward secrecy) with AEAD ciphers only,
// ECDSA before RSA, AES-GCM before ChaCha20 (AES-NI makes it the cheaper one on servers).
// TLS 1.3 suites are not set by this list; TLS 1.1 and older are refused by the uWS build.

export const DEFAULT_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');
