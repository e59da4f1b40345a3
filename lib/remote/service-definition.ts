import type { ServiceDefinition } from '@grpc/grpc-js';

const passThrough = (value: Buffer | Uint8Array): Buffer => (Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength));

/**
 * `Remoting.Connect` of remote.proto for grpc-js. Frames cross grpc-js as raw bytes; they
 * are encoded and decoded (and validated) by wire.ts, where a malformed frame is handled
 * instead of failing inside grpc-js.
 */
export const remotingService: ServiceDefinition = {
  connect: {
    path: '/nestjs_grains.remote.v1.Remoting/Connect',
    requestStream: true,
    responseStream: true,
    requestSerialize: passThrough,
    requestDeserialize: passThrough,
    responseSerialize: passThrough,
    responseDeserialize: passThrough,
    originalName: 'Connect',
  },
};

/**
 * gRPC keepalive, for the client channel and the server alike: a peer that goes silent
 * without closing is noticed within about 15 s.
 *
 * NOTE: only options grpc-js 1.14 reads. It does not implement the C core's ping policing
 * (`grpc.http2.min_ping_interval_without_data_ms`, `grpc.http2.max_pings_without_data`), so
 * those are not set; `grpc.keepalive_permit_without_calls` is read by clients only and set
 * in endpoint.ts.
 */
export const KEEPALIVE_OPTIONS = {
  // Each side pings the other this often, per connection.
  'grpc.keepalive_time_ms': 10_000,
  // Close the connection when a ping is not answered within this.
  'grpc.keepalive_timeout_ms': 5_000,
} as const;
