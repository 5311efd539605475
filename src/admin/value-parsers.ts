// The admin variables' parsers and their cross-variable rule live with the other variable parsers
// (src/config/admin-parsers.ts), so that config imports nothing above it; re-exported here.
export { accessLogRate, adminExposureIssue, adminListen, adminToken, isLoopbackHost } from '../config/admin-parsers.js';
