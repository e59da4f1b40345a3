import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { contractDrift, fieldsOf, type WireContract } from '../../lib/remote/wire-contract.js';
import { type MemberInfo, Status, WIRE_CONTRACT } from '../../lib/remote/wire.js';

const PROTO_SOURCE = readFileSync(new URL('../../proto/remote.proto', import.meta.url), 'utf8');

/** remote.proto with `from` replaced by `to` (the edit must apply: a no-op edit would prove nothing). */
function editedProto(from: string | RegExp, to: string): protobuf.Root {
  const source = PROTO_SOURCE.replace(from, to);
  expect(source, `the edit ${String(from)} applies to remote.proto`).not.toBe(PROTO_SOURCE);
  return protobuf.parse(source).root;
}

describe('the wire types against proto/remote.proto', () => {
  afterEach(() => {
    vi.doUnmock('protobufjs');
    vi.resetModules();
  });

  it('agree as shipped (wire.ts also checked this when it loaded)', () => {
    expect(contractDrift(protobuf.parse(PROTO_SOURCE).root, WIRE_CONTRACT)).toEqual([]);
  });

  it('reports a proto field the TypeScript type lacks', () => {
    const root = editedProto(/reserved 6;.*\n.*\n/, 'string expected_incarnation = 6;\n');
    expect(contractDrift(root, WIRE_CONTRACT)).toEqual(['message Handshake: field "expectedIncarnation" of remote.proto is not in the TypeScript type']);
  });

  it('reports a renamed proto field both ways', () => {
    const root = editedProto('string codec = 5;', 'string codec_name = 5;');
    expect(contractDrift(root, WIRE_CONTRACT)).toEqual([
      'message Handshake: field "codec" of the TypeScript type is not in remote.proto',
      'message Handshake: field "codecName" of remote.proto is not in the TypeScript type',
    ]);
  });

  it('reports a message missing from the proto', () => {
    const root = editedProto(/RemoteError\b/g, 'RemoteFault');
    expect(contractDrift(root, WIRE_CONTRACT)).toEqual(['message RemoteError is not in remote.proto']);
  });

  it('reports a renumbered, a removed and an added status', () => {
    const renumbered = editedProto('TIMEOUT = 11;', 'TIMEOUT = 17;');
    expect(contractDrift(renumbered, WIRE_CONTRACT)).toEqual(['enum Status: TIMEOUT is 11 in the TypeScript const but 17 in remote.proto']);
    const removed = editedProto(/ {2}IDENTITY_REFUSED = 16;.*\n/, '');
    expect(contractDrift(removed, WIRE_CONTRACT)).toEqual(['enum Status: IDENTITY_REFUSED = 16 of the TypeScript const is not in remote.proto']);
    const added = editedProto('IDENTITY_REFUSED = 16;', 'IDENTITY_REFUSED = 16;\n  RATE_LIMITED = 17;');
    expect(contractDrift(added, WIRE_CONTRACT)).toEqual(['enum Status: RATE_LIMITED = 17 of remote.proto is not in the TypeScript const']);
  });

  it('reports drift on the TypeScript side too', () => {
    const root = protobuf.parse(PROTO_SOURCE).root;
    const contract: WireContract = {
      ...WIRE_CONTRACT,
      messages: { ...WIRE_CONTRACT.messages, MemberInfo: ['memberId', 'incarnation', 'address', 'kinds', 'zone'] },
      enums: { Status: { STATUS_UNSPECIFIED: 0, ...Status, OK: 100 } },
    };
    expect(contractDrift(root, contract)).toEqual([
      'message MemberInfo: field "zone" of the TypeScript type is not in remote.proto',
      'enum Status: OK is 100 in the TypeScript const but 1 in remote.proto',
    ]);
  });

  it('makes wire.ts fail at import when the proto it loads has drifted', async () => {
    const drifted = editedProto('string codec = 5;', 'string codec_name = 5;');
    vi.doMock('protobufjs', async (importOriginal) => {
      const actual = (await importOriginal<{ default: typeof protobuf }>()).default;
      return { default: { ...actual, loadSync: () => drifted } };
    });
    vi.resetModules();
    await expect(import('../../lib/remote/wire.js')).rejects.toThrow(/wire\.ts and proto\/remote\.proto disagree:\n- message Handshake: field "codec"/);
  });

  it('ties each field list to its TypeScript type at compile time (checked by tsc)', () => {
    // @ts-expect-error a property of MemberInfo is missing from the list
    const missing = fieldsOf<MemberInfo>({ memberId: true, incarnation: true, address: true });
    // @ts-expect-error MemberInfo has no such property
    const extra = fieldsOf<MemberInfo>({ memberId: true, incarnation: true, address: true, kinds: true, zone: true });
    expect([missing.length, extra.length]).toEqual([3, 5]);
  });
});
