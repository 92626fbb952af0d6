import { expect } from 'chai';
import {
  formatClusterTable,
  formatNodeLine,
  nodeLogLevel,
  type NodeLineFormat,
} from '../../../src/cli/clusterOutput.ts';

const at = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
const plain: NodeLineFormat = { nameWidth: 10, pretty: false, color: false, minLevel: 'info' };

function entry(level: number, msg: string): string {
  return JSON.stringify({ level, time: at, pid: 1, hostname: 'h', name: 'matssocket', msg });
}

function urls(port: number): {
  demo: string;
  admin: string;
  webSocket: string;
  metrics: string;
  health: string;
} {
  const base = `http://127.0.0.1:${port}`;
  return {
    demo: `${base}/`,
    admin: `${base}/admin`,
    webSocket: `ws://127.0.0.1:${port}/matssocket`,
    metrics: `${base}/metrics`,
    health: `${base}/health`,
  };
}

describe('cluster output', () => {
  describe('formatNodeLine()', () => {
    it('prefixes each line with the padded node name', () => {
      expect(formatNodeLine('cluster-2', 2, 'plain text', plain)).to.equal('cluster-2  | plain text\n');
      expect(formatNodeLine('cluster-2', 2, entry(30, 'hello'), plain)).to.equal(
        `cluster-2  | ${entry(30, 'hello')}\n`,
      );
    });

    it('on a terminal: the readable form, every line of it prefixed, the prefix coloured per node', () => {
      const line = formatNodeLine('cluster-1', 1, entry(40, 'careful'), { ...plain, pretty: true });
      expect(line).to.equal('cluster-1  | 03:04:05.678 WARN  matssocket: careful\n');
      const coloured = formatNodeLine('cluster-1', 1, 'a\nb', { ...plain, color: true });
      expect(coloured).to.equal('\u001b[36mcluster-1  |\u001b[0m a\n\u001b[36mcluster-1  |\u001b[0m b\n');
    });

    it('drops log lines below LOG_LEVEL, never other lines', () => {
      const warn: NodeLineFormat = { ...plain, minLevel: 'warn' };
      expect(formatNodeLine('n', 1, entry(30, 'info'), warn)).to.equal(undefined);
      expect(formatNodeLine('n', 1, entry(50, 'error'), warn)).to.be.a('string');
      expect(formatNodeLine('n', 1, 'matssocket: cannot listen', { ...plain, minLevel: 'silent' })).to.be.a(
        'string',
      );
    });

    it('the nodes log at info at least, so their ready line reaches the cluster', () => {
      expect(nodeLogLevel('silent')).to.equal('info');
      expect(nodeLogLevel('error')).to.equal('info');
      expect(nodeLogLevel('info')).to.equal('info');
      expect(nodeLogLevel('debug')).to.equal('debug');
    });
  });

  describe('formatClusterTable()', () => {
    const rows = [
      { nodeName: 'cluster-1', pid: 101, urls: urls(8080) },
      { nodeName: 'cluster-2', pid: 102, urls: urls(8081) },
    ];

    it('one aligned row per node with pid and URLs, then the generated admin token', () => {
      const lines = formatClusterTable(rows, 'T'.repeat(43)).split('\n');
      expect(lines).to.include(
        'cluster-2  102  http://127.0.0.1:8081/  http://127.0.0.1:8081/admin  ws://127.0.0.1:8081/matssocket  http://127.0.0.1:8081/metrics',
      );
      expect(lines).to.include(`Admin token (every node): ${'T'.repeat(43)}`);
      expect(lines).to.include(`Admin page:  http://127.0.0.1:8080/admin#token=${'T'.repeat(43)}`);
      const header = lines.find((l) => l.startsWith('node '))!;
      expect(header.indexOf('WebSocket')).to.equal(
        lines.find((l) => l.startsWith('cluster-1'))!.indexOf('ws://'),
      );
    });

    it('never prints a token that came from MATSSOCKET_ADMIN_TOKEN', () => {
      const text = formatClusterTable(rows, undefined);
      expect(text).to.contain('Admin token (every node): MATSSOCKET_ADMIN_TOKEN');
      expect(text).to.not.contain('#token=');
    });
  });
});
