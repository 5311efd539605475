// The default cipher list is a configuration default (src/config/ciphers.ts); re-exported here.
export { DEFAULT_CIPHERS } from '../config/ciphers.js';
