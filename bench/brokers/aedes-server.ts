// Aedes on a plain TCP listener, memory persistence: the Node peer fleetmq is compared with.
// Usage: node dist/bench/brokers/aedes-server.js [port]; prints "aedes listening on HOST:PORT".
import * as net from 'node:net';

interface AedesBroker {
  handle: (stream: net.Socket) => void;
  close(cb?: () => void): void;
}

// aedes 1.x is an ES module exporting the class with an async factory; Node 20.19+ can require it.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Aedes } = require('aedes') as { Aedes: { createBroker(opts?: object): Promise<AedesBroker> } };

async function main(): Promise<void> {
  const broker = await Aedes.createBroker();
  const server = net.createServer(broker.handle);
  server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
    const a = server.address() as net.AddressInfo;
    console.log(`aedes listening on ${a.address}:${a.port}`);
  });
  const stop = () => server.close(() => broker.close(() => process.exit(0)));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => { console.error(err); process.exit(1); });
