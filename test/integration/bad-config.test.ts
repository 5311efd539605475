// A bad environment stops the built CLI before anything listens: exit code 1 and a message that
// names the variable. (Every parser has unit tests in test/config; this is the process end of it.)

import t from 'tap';
import { ensureBuilt, freePort, runCli } from '../helpers/sluice.js';
import { RawClient } from '../helpers/raw-client.js';

t.before(ensureBuilt);

t.test('a bad variable: exit 1, the variable named, nothing listening', async (t) => {
  const port = await freePort();
  const cases: [string, string][] = [
    ['SLUICE_WORKERS', 'lots'],
    ['SLUICE_UPSTREAMS', 'ftp://127.0.0.1:21'],
    ['SLUICE_CONNECT_TIMEOUT_MS', '-5'],
    ['SLUICE_BALANCER', 'fastest'],
  ];
  for (const [name, value] of cases) {
    const { code, stdout, stderr } = runCli({
      SLUICE_LISTEN: `127.0.0.1:${port}`,
      SLUICE_UPSTREAMS: 'http://127.0.0.1:9',
      SLUICE_ADMIN_LISTEN: 'off',
      [name]: value,
    });
    t.equal(code, 1, `${name}=${value}: exit code 1`);
    t.match(stderr, name, `${name}=${value}: the message names ${name}`);
    t.notMatch(stdout, /sluice is listening/, `${name}=${value}: never listened`);
  }
  const probe = new RawClient(port);
  await t.rejects(probe.opened(), { code: 'ECONNREFUSED' }, 'the port was never taken');
});
