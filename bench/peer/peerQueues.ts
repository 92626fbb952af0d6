/** Where the Socket.IO peer's processes meet on RabbitMQ, passed to each as its config. */
export interface PeerConfig {
  amqpUrl: string;
  /** This bench run's queue and connection name prefix. */
  prefix: string;
  /** Unacknowledged deliveries each consumer may hold (the backend's concurrency). */
  prefetch: number;
}

/**
 * The peer's durable queues: requests (server → backend) and the server's replies (backend → server). Quorum
 * queues, as the Mats layer declares, so broker work per message is alike.
 */
export const PEER_QUEUE_OPTIONS = { durable: true, arguments: { 'x-queue-type': 'quorum' } } as const;

export function peerQueueNames(prefix: string): { requests: string; replies: string } {
  return { requests: `${prefix}peer.requests`, replies: `${prefix}peer.replies` };
}
