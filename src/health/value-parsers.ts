// The health variables' parsers live with the other variable parsers (src/config/health-parsers.ts),
// so that config imports nothing above it; re-exported here for existing importers.
export { envFilePath, healthPath, statusAccepted, statusRanges } from '../config/health-parsers.js';
