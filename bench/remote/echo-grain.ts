import type { GrainContext } from 'nestjs-grains';

/**
 * The grain member B hosts in the remote-call scenario: echoes its 64-byte argument (so a
 * call carries 64 bytes each way, like the grpc-js echo baselines) and counts its calls, so
 * rounds can be checked outside the timer.
 */
export class EchoGrain {
  calls = 0;
  constructor(readonly ctx: GrainContext) {}

  async echo(data: Uint8Array): Promise<Uint8Array> {
    this.calls++;
    return data;
  }

  async count(): Promise<number> {
    return this.calls;
  }
}

export const ECHO_KIND = 'echo';
export const REMOTE_CLUSTER_NAME = 'bench-remote';
