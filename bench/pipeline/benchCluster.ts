import { BackendRuns, registerFaultEndpoints } from '../../harness/faultEndpoints.ts';
import type { TestDatabase } from '../../harness/databases.ts';
import { startTestCluster, type TestCluster } from '../../harness/startTestCluster.ts';

/**
 * The pipeline benches' cluster: two nodes in this process on RabbitMQ and `db`, each with the backend endpoints
 * (`Fault.echo`), and the factory's production redelivery and sweeper timings instead of the test cluster's fast
 * ones (which would add background load).
 */
export function startBenchCluster(db: TestDatabase): Promise<TestCluster> {
  return startTestCluster({
    nodes: 2,
    db,
    transport: 'rabbitmq',
    endpoints: registerFaultEndpoints(new BackendRuns()),
    factory: {
      maxDeliveryAttempts: 6,
      retryDelayMs: 100,
      outboxSweepIntervalMs: 1000,
      outboxSweepMinAgeMs: 2000,
    },
  });
}
