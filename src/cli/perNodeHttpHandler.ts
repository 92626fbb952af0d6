import type { HttpHandler } from '../ops/httpHandler.ts';
import type { AssembledNode, NodeHttpHandler } from './NodeAssembly.ts';

/**
 * A `NodeHttpHandler` from a plain `node:http` handler made once per assembled node (the ops handlers of
 * src/ops need the node's server, store and transport, which exist only once the assembly has started it).
 */
export function perNodeHttpHandler(create: (node: AssembledNode) => HttpHandler): NodeHttpHandler {
  const handlers = new WeakMap<AssembledNode, HttpHandler>();
  return (node, request, response) => {
    let handler = handlers.get(node);
    if (!handler) handlers.set(node, (handler = create(node)));
    return handler(request, response);
  };
}
