// One HTTP/1.1 request on a fresh connection (no agent, no keep-alive pool), so that with several
// workers the kernel picks a worker per request, and the answer as plain values for assertions.

import http from 'node:http';

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface OnceOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Source address of the connection (any 127.0.0.0/8 address works on Linux loopback). */
  localAddress?: string;
}

/** Rejects on a socket error (the test then fails with it), never resolves a made-up status. */
export function once(port: number, path: string, options: OnceOptions = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        headers: options.headers,
        localAddress: options.localAddress,
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('latin1');
        res.on('data', (s: string) => (body += s));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}
