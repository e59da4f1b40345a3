import { scenario as activation } from '../scenarios/activation.js';
import { scenario as localCall } from '../scenarios/local-call.js';
import { scenario as otel } from '../scenarios/otel.js';
import { scenario as remoteCall } from '../scenarios/remote-call.js';
import { scenario as remoteCallTls } from '../scenarios/remote-call-tls.js';
import type { ScenarioSpec } from './scenario.js';

/** Every scenario, in the order `run` runs them. Importing them loads no runtime. */
export const SCENARIOS: readonly ScenarioSpec[] = [localCall, activation, remoteCall, remoteCallTls, otel];

export function findScenario(id: string): ScenarioSpec {
  const found = SCENARIOS.find((s) => s.id === id);
  if (found === undefined) throw new Error(`unknown scenario "${id}" (known: ${SCENARIOS.map((s) => s.id).join(', ')})`);
  return found;
}
