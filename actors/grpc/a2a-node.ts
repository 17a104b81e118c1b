// The A2ANode service: identity, discovery and names, messaging, tasks and threads now; the other areas answer UNIMPLEMENTED until their issues land.
// Listing every RPC here (typed by the generated A2ANodeServer) makes a forgotten method a type error.
import type { A2ANodeServer } from '../../proto/gen/moltmesh/v1/a2a_node.ts';
import type { NodeApi } from './node-api.ts';
import { discoveryHandlers } from './discovery.ts';
import { messagingHandlers } from './messaging.ts';
import { taskHandlers } from './tasks.ts';
import { threadHandlers } from './threads.ts';
import { unary, unimplemented, type HandlerContext } from './rpc.ts';

export function a2aNodeHandlers(api: NodeApi, ctx: HandlerContext): A2ANodeServer {
  const files = 'files are';
  return {
    getIdentity: unary(ctx, 'GetIdentity', () => api.identity()),

    ...discoveryHandlers(api, ctx),

    ...messagingHandlers(api, ctx),

    ...taskHandlers(api, ctx),

    putFile: unimplemented(files, 'A2ANode.PutFile'),
    getFile: unimplemented(files, 'A2ANode.GetFile'),
    statFile: unimplemented(files, 'A2ANode.StatFile'),

    ...threadHandlers(api, ctx),

  };
}
