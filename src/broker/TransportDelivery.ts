import type { Delivery, MessageProperties } from './Transport.ts';

/** How a transport settles one delivery on the channel it came on; both drop the call if that channel closed. */
export interface DeliverySettler {
  ack(): void;
  reject(requeue: boolean): void;
}

/**
 * A {@link Delivery} handed to a handler. It does not guard against settling twice: a double ack reaches the
 * broker, which closes the channel as RabbitMQ does, so both transports expose the same bug the same way.
 * @internal
 */
export class TransportDelivery implements Delivery {
  readonly queue: string;
  readonly body: Buffer;
  readonly properties: MessageProperties;
  readonly deliveryCount: number;
  readonly redelivered: boolean;
  /** True once acked or rejected (the transport rejects with requeue if a failing handler settled nothing). */
  settled = false;
  private readonly settler: DeliverySettler;

  constructor(
    queue: string,
    body: Buffer,
    properties: MessageProperties,
    deliveryCount: number,
    redelivered: boolean,
    settler: DeliverySettler,
  ) {
    this.queue = queue;
    this.body = body;
    this.properties = properties;
    this.deliveryCount = deliveryCount;
    this.redelivered = redelivered;
    this.settler = settler;
  }

  ack(): void {
    this.settled = true;
    this.settler.ack();
  }

  reject(requeue: boolean): void {
    this.settled = true;
    this.settler.reject(requeue);
  }
}
