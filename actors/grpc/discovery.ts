// Discovery and name RPCs of A2ANode: PublishCard, GetAgentCard, FindAgents, WithdrawCard, ClaimName, ResolveName,
// ReleaseName, ListNames — protobuf in, domain calls out (actors/discovery), and back.
import type { A2ANodeServer } from '../../proto/gen/moltmesh/v1/a2a_node.ts';
import type { AgentCard as PbCard, FindAgentsResponse, Skill as PbSkill } from '../../proto/gen/moltmesh/v1/cards.ts';
import type { NameRecord as PbName } from '../../proto/gen/moltmesh/v1/names.ts';
import { invalid } from '../../runtime/errors.ts';
import { CAPABILITY_PREFIX, capabilityId } from '../capability.ts';
import type { CardOverrides } from '../discovery/cards.ts';
import type { NameView } from '../discovery/name-claims.ts';
import { parseName } from '../discovery/names.ts';
import { CARD_LIMITS, type SignedCard, type Skill } from '../discovery/records.ts';
import type { JsonValue } from '../../machines/task.ts';
import type { NodeApi } from './node-api.ts';
import { callSignal, serverStream, unary, type HandlerContext } from './rpc.ts';
import { boundedText, limit, nonNegative, requireDid } from './validate.ts';

type DiscoveryHandlers = Pick<A2ANodeServer,
  'publishCard' | 'getAgentCard' | 'findAgents' | 'withdrawCard' | 'claimName' | 'resolveName' | 'releaseName' | 'listNames'>;

const DEFAULT_FIND_TIMEOUT_MS = 10_000;
const MAX_FIND_TIMEOUT_MS = 120_000;
/** GetAgentCard / ResolveName without a deadline of their own give up after this long. */
const LOOKUP_TIMEOUT_MS = 15_000;

export function discoveryHandlers(api: NodeApi, ctx: HandlerContext): DiscoveryHandlers {
  return {
    publishCard: unary(ctx, 'PublishCard', async (req) => {
      const overrides: CardOverrides = {};
      if (req.name) overrides.name = parseName('name', req.name);
      if (req.description) overrides.description = boundedText('description', req.description, CARD_LIMITS.text);
      if (req.capabilities.length) {
        if (req.capabilities.length > CARD_LIMITS.capabilities) throw invalid('capabilities', `at most ${CARD_LIMITS.capabilities}`);
        overrides.capabilities = req.capabilities.map((c, i) => capabilityId(`capabilities[${i}]`, c));
      }
      if (req.skills.length) {
        if (req.skills.length > CARD_LIMITS.skills) throw invalid('skills', `at most ${CARD_LIMITS.skills}`);
        overrides.skills = req.skills.map((s, i) => fromPbSkill(`skills[${i}]`, s));
      }
      return { card: toPbCard(await api.publishCard(overrides)) };
    }),

    getAgentCard: unary(ctx, 'GetAgentCard', async (req, call) => {
      const did = requireDid('did', req.did);
      return { card: toPbCard(await api.getAgentCard(did, callSignal(call, LOOKUP_TIMEOUT_MS))) };
    }),

    findAgents: serverStream<{ capability: string; limit: number; timeoutMs: number }, FindAgentsResponse>(ctx, 'FindAgents', async (req, sink) => {
      if (!req.capability) throw invalid('capability', 'is required, e.g. text-generation');
      const capability = capabilityId('capability', req.capability);
      const timeoutMs = nonNegative('timeout_ms', req.timeoutMs) || DEFAULT_FIND_TIMEOUT_MS;
      if (timeoutMs > MAX_FIND_TIMEOUT_MS) throw invalid('timeout_ms', `at most ${MAX_FIND_TIMEOUT_MS} (2 minutes)`);
      const closed = new AbortController();
      sink.onClose(() => closed.abort());
      // Each card goes out as soon as it is verified: a client sees the first agent long before the search ends.
      for await (const card of api.findAgents(capability, { limit: limit('limit', req.limit, 20), timeoutMs, signal: closed.signal })) {
        if (!(await sink.write({ card: toPbCard(card) }, 1024))) return;
      }
    }),

    withdrawCard: unary(ctx, 'WithdrawCard', async () => (await api.withdrawCard(), {})),

    claimName: unary(ctx, 'ClaimName', async (req) => ({ record: toPbName(await api.claimName(parseName('name', req.name))) })),

    resolveName: unary(ctx, 'ResolveName', async (req, call) => ({
      record: toPbName(await api.resolveName(parseName('name', req.name), callSignal(call, LOOKUP_TIMEOUT_MS))),
    })),

    releaseName: unary(ctx, 'ReleaseName', async (req) => (await api.releaseName(parseName('name', req.name)), {})),

    listNames: unary(ctx, 'ListNames', () => ({ records: api.listNames().map(toPbName) })),
  };
}


function schemaJson(field: string, text: string): JsonValue {
  if (!text) return true; // no schema: anything
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw invalid(field, `not JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'boolean' && (typeof v !== 'object' || v === null || Array.isArray(v))) throw invalid(field, 'a JSON Schema is an object or a boolean');
  if (text.length > CARD_LIMITS.schemaBytes) throw invalid(field, `larger than ${CARD_LIMITS.schemaBytes} bytes`);
  return v as JsonValue;
}

function fromPbSkill(field: string, s: PbSkill): Skill {
  const id = capabilityId(`${field}.id`, s.id).slice(CAPABILITY_PREFIX.length);
  return {
    id,
    name: boundedText(`${field}.name`, s.name || id, CARD_LIMITS.skillName),
    description: boundedText(`${field}.description`, s.description, CARD_LIMITS.text),
    inputSchema: schemaJson(`${field}.input_schema_json`, s.inputSchemaJson),
    outputSchema: schemaJson(`${field}.output_schema_json`, s.outputSchemaJson),
  };
}

export function toPbCard(c: SignedCard): PbCard {
  return {
    did: c.did,
    name: c.name,
    description: c.description,
    capabilities: c.capabilities,
    skills: c.skills.map((s) => ({
      id: s.id, name: s.name, description: s.description,
      inputSchemaJson: JSON.stringify(s.inputSchema), outputSchemaJson: JSON.stringify(s.outputSchema),
    })),
    addresses: c.addresses,
    protocolVersion: c.protocolVersion,
    issuedAtMs: c.issuedAt,
    expiresAtMs: c.expiresAt,
    seq: c.seq,
    signature: Buffer.from(c.signature),
  };
}

function toPbName(n: NameView): PbName {
  return { name: n.name, did: n.did, claimedAtMs: n.claimedAt, expiresAtMs: n.expiresAt, seq: n.seq, autoRenew: n.autoRenew };
}
