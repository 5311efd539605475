// The TLS variables' parsers live with the other variable parsers (src/config/tls-parsers.ts), so
// that config imports nothing above it; re-exported here for existing importers.
export { cipherList, filePath, flag, optionalListenAddress, secret } from '../config/tls-parsers.js';
