// The peer plumbing alone (src/cluster/peer-server.ts, peer-links.ts), over real gRPC on
// loopback: a service added before start answers through a link made from a member record,
// links follow the member set and incarnations, and garbage on the port closes only that
// connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { PeerServer, bytesMethod } from '../../src/cluster/peer-server';
import { PeerLinks, type PeerLink } from '../../src/cluster/peer-links';
import type { MemberInfo } from '../../src/cluster/membership';
import { within } from '../helpers/wait';

const ECHO = bytesMethod('Test', 'Echo', 'unary');

function echoServer(tag: string): PeerServer {
  const s = new PeerServer();
  s.addService({ Echo: ECHO } as grpc.ServiceDefinition, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.concat([Buffer.from(tag + ':'), call.request])),
  });
  return s;
}

function call(link: PeerLink, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    link.client.makeUnaryRequest(ECHO.path, ECHO.requestSerialize, ECHO.responseDeserialize, Buffer.from(body),
      { deadline: Date.now() + 10_000 }, (err, res) => (err ? reject(err) : resolve(res!.toString())));
  });
}

const member = (nodeId: string, port: number, incarnation = 'i1'): MemberInfo =>
  ({ nodeId, incarnation, advertise: '127.0.0.1', clusterPort: port, startedAt: 0 });

test('a link per other member, following the view; services added before start answer', async () => {
  const a = echoServer('a');
  const b = echoServer('b');
  const links = new PeerLinks('self');
  try {
    const pa = await a.start('127.0.0.1', 0);
    const pb = await b.start('127.0.0.1', 0);
    assert.ok(pa > 0 && pb > 0 && pa !== pb, 'port 0 binds a free port');
    assert.throws(() => a.addService({ Echo: ECHO } as grpc.ServiceDefinition, {}), /after start/);
    const events: string[] = [];
    links.on('up', (l) => events.push(`up ${l.nodeId} ${l.incarnation}`));
    links.on('down', (l, why) => events.push(`down ${l.nodeId} ${l.incarnation} ${why}`));

    links.update([member('a', pa), member('b', pb), member('self', 1)]);
    assert.deepEqual(links.all().map((l) => l.nodeId), ['a', 'b'], 'no link to itself');
    assert.equal(await within(call(links.link('a')!, 'x'), 15_000, 'echo from a'), 'a:x');
    assert.equal(await within(call(links.link('b')!, 'y'), 15_000, 'echo from b'), 'b:y');
    assert.ok(links.channel('a'));

    const oldA = links.link('a')!;
    links.update([member('a', pa, 'i2'), member('self', 1)]);
    assert.equal(oldA.closed, true, 'a new incarnation closes the old link');
    assert.equal(links.link('b'), null, 'b left');
    assert.equal(links.link('a')!.incarnation, 'i2');
    assert.equal(await within(call(links.link('a')!, 'z'), 15_000, 'echo from a again'), 'a:z');
    assert.deepEqual(events, ['up a i1', 'up b i1', 'down a i1 incarnation', 'down b i1 left', 'up a i2']);
    await assert.rejects(call(oldA, 'late'), 'a call on a closed link fails');

    links.update([]);
    assert.deepEqual(links.all(), [], 'an empty view (fenced) closes every link');
  } finally {
    links.closeAll();
    await a.stop();
    await b.stop();
  }
});

test('garbage on the cluster port closes that connection only; the server keeps answering', async () => {
  const a = echoServer('a');
  const links = new PeerLinks('self');
  try {
    const port = await a.start('127.0.0.1', 0);
    // Not HTTP/2 at all, then an HTTP/2 preface followed by junk frames, then a half-open socket.
    const junk = [
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.alloc(64, 0xff)]),
      Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 131) & 0xff)),
    ];
    for (const bytes of junk) {
      await within(new Promise<void>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
        s.on('error', () => resolve());
        s.on('close', () => resolve());
        s.resume();
        // The server may also keep a connection open that said nothing valid yet: end ours.
        setTimeout(() => s.destroy(), 2000).unref();
      }), 15_000, 'the junk connection to end');
    }
    links.update([member('a', port)]);
    assert.equal(await within(call(links.link('a')!, 'still'), 15_000, 'echo after garbage'), 'a:still');
  } finally {
    links.closeAll();
    await a.stop();
  }
});
