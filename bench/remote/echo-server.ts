/**
 * The grpc-js echo server of the remote-call baselines: a separate process (forked from
 * dist/ by child-process.ts) that never loads nestjs-grains. Serves on 127.0.0.1 (a free
 * port): `Unary` answers each request with its bytes; `Stream` answers each message of each
 * frame with its bytes, re-batched per event-loop turn (echo-wire.ts). Counts what it
 * answered, so rounds can be checked outside the timer.
 *
 *   node dist/bench/remote/echo-server.js
 */
import { cpuMicros, reportStartFailure, serveParent } from './child-process.js';
import { BatchQueue, echoService, forEachMessage } from './echo-wire.js';

try {
  const grpc = await import('@grpc/grpc-js');
  const counts = { unary: 0, streamed: 0, badFrames: 0 };
  const server = new grpc.Server();
  server.addService(echoService, {
    unary: (call: { request: Buffer }, callback: (error: null, value: Buffer) => void) => {
      counts.unary++;
      callback(null, call.request);
    },
    stream: (stream: import('@grpc/grpc-js').ServerDuplexStream<Buffer, Buffer>) => {
      const queue = new BatchQueue(stream);
      const answer = (id: number, payload: Buffer) => queue.push(id, payload);
      stream.on('data', (chunk: Buffer) => {
        try {
          counts.streamed += forEachMessage(chunk, answer);
        } catch {
          counts.badFrames++;
        }
      });
      stream.on('end', () => stream.end());
      stream.on('error', () => {});
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  serveParent(
    `127.0.0.1:${port}`,
    { cpu: () => cpuMicros(), stats: () => ({ ...counts, heapUsedMb: process.memoryUsage().heapUsed / 2 ** 20 }) },
    () =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2_000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  );
} catch (error) {
  reportStartFailure(error);
}
