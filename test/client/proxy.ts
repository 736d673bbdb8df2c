/**
 * A TCP proxy on loopback for network-failure tests: it can swallow responses (the
 * server did the work, the client never hears back) and cut open connections.
 */
import net from 'node:net';

export interface FaultyProxy {
  url: string;
  /** The next `n` responses are dropped: the connection is destroyed instead of answered. */
  dropResponses(n: number): void;
  /** Destroys every open connection now. */
  cutAll(): void;
  /** Requests seen (first bytes of each request line). */
  readonly requests: string[];
  close(): Promise<void>;
}

export async function faultyProxy(target: string): Promise<FaultyProxy> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<net.Socket>();
  const requests: string[] = [];
  let drop = 0;
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(port), hostname);
    sockets.add(client).add(upstream);
    const cut = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk) => {
      const text = chunk.toString('latin1');
      const line = /^(GET|POST|PATCH|PUT|DELETE|HEAD) \S+/.exec(text);
      if (line) requests.push(line[0]);
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (drop > 0) {
        drop--;
        cut();
        return;
      }
      client.write(chunk);
    });
    client.on('close', cut).on('error', cut);
    upstream.on('close', cut).on('error', cut);
    client.on('close', () => sockets.delete(client));
    upstream.on('close', () => sockets.delete(upstream));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    requests,
    dropResponses(n) {
      drop = n;
    },
    cutAll() {
      for (const s of sockets) s.destroy();
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
