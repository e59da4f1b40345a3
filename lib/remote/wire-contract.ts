import protobuf from 'protobufjs';

/**
 * What the hand-written wire types of this package assume remote.proto declares: for each
 * message (by its proto name) the field names the TypeScript type uses, camelCase as
 * protobufjs exposes them; for each enum its names and values.
 */
export interface WireContract {
  /** The proto package, e.g. `nestjs_grains.remote.v1`. */
  readonly protoPackage: string;
  /** The file it is declared in, for the messages. @default 'remote.proto' */
  readonly protoFile?: string;
  readonly messages: Readonly<Record<string, readonly string[]>>;
  readonly enums: Readonly<Record<string, Readonly<Record<string, number>>>>;
}

/** The property names of every member of a union (`keyof` of a union keeps only the shared ones). */
type KeysOf<T> = T extends unknown ? keyof T & string : never;

/**
 * Every property name of `T`, once. Typed against `T`, so the list cannot drift from the
 * TypeScript type: a property missing from it, or one `T` does not have, fails to compile.
 */
export function fieldsOf<T>(fields: Record<KeysOf<T>, true>): readonly string[] {
  return Object.keys(fields);
}

/**
 * The differences between `contract` and the proto `root`, one sentence each; empty when
 * they agree. Both directions: a field or enum value on one side only is a difference, as is
 * an enum value with another number.
 *
 * NOTE: pure (no file access), so a test can hand it a root parsed from an edited copy of
 * remote.proto and see the drift reported.
 */
export function contractDrift(root: protobuf.Root, contract: WireContract): string[] {
  const drift: string[] = [];
  const file = contract.protoFile ?? 'remote.proto';
  for (const [name, fields] of Object.entries(contract.messages)) {
    const type = root.lookup(`${contract.protoPackage}.${name}`);
    if (!(type instanceof protobuf.Type)) {
      drift.push(`message ${name} is not in ${file}`);
      continue;
    }
    const inProto = Object.keys(type.fields);
    for (const field of fields) {
      if (!inProto.includes(field)) drift.push(`message ${name}: field "${field}" of the TypeScript type is not in ${file}`);
    }
    for (const field of inProto) {
      if (!fields.includes(field)) drift.push(`message ${name}: field "${field}" of ${file} is not in the TypeScript type`);
    }
  }
  for (const [name, values] of Object.entries(contract.enums)) {
    const type = root.lookup(`${contract.protoPackage}.${name}`);
    if (!(type instanceof protobuf.Enum)) {
      drift.push(`enum ${name} is not in ${file}`);
      continue;
    }
    for (const [key, value] of Object.entries(values)) {
      const inProto = Object.hasOwn(type.values, key) ? type.values[key] : undefined;
      if (inProto === undefined) drift.push(`enum ${name}: ${key} = ${value} of the TypeScript const is not in ${file}`);
      else if (inProto !== value) drift.push(`enum ${name}: ${key} is ${value} in the TypeScript const but ${inProto} in ${file}`);
    }
    for (const [key, value] of Object.entries(type.values)) {
      if (!Object.hasOwn(values, key)) drift.push(`enum ${name}: ${key} = ${value} of ${file} is not in the TypeScript const`);
    }
  }
  return drift;
}
