import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { ErrorCode } from '../../../src/errors.ts';
import { GatewayConfigError, type ConfigIssue } from '../../../src/gateway/GatewayConfigError.ts';
import {
  loadGatewayConfig,
  parseGatewayConfig,
  resolveGatewayConfig,
  type LoadGatewayConfigOptions,
} from '../../../src/gateway/loadGatewayConfig.ts';

const DEFAULTS = { defaults: { hostname: 'box', pid: 7 } } as const;

/** A valid configuration; the tests replace one line at a time (line numbers in the comments). */
const VALID_LINES = [
  'nodeName: gw-1', // 1
  'listen:', // 2
  '  port: 8099', // 3
  'broker:', // 4
  '  url: amqp://guest:guest@127.0.0.1:5672', // 5
  'database:', // 6
  "  url: 'sqlite::memory:'", // 7
  'endpoints:', // 8
  '  - id: Shop.placeOrder', // 9
  '    to: Orders.placeOrder', // 10
  '  - id: Shop.quote', // 11
  '    to: Orders.quote', // 12
  '    mode: forward-nonessential', // 13
  '    timeoutMs: 5000', // 14
  'terminators:', // 15
  '  - id: Shop.events', // 16
  '    from: Shop.toClient.events', // 17
  'topics:', // 18
  '  - pattern: news.*', // 19
  '  - pattern: user.{userId}.**', // 20
  '    allow: { roles: [reader] }', // 21
  'limits:', // 22
  '  maxSessionsPerUser: 5', // 23
  'admin:', // 24
  '  token: a-token-of-sufficient-length', // 25
  'auth:', // 26
  '  type: insecure-dev', // 27
];

function withLine(line: number, text: string | string[]): string {
  const lines = [...VALID_LINES];
  lines.splice(line - 1, 1, ...(Array.isArray(text) ? text : [text]));
  return lines.join('\n');
}

/** The issues of an invalid text (fails the test when it is valid). */
function issuesOf(text: string, options: LoadGatewayConfigOptions = {}): readonly ConfigIssue[] {
  try {
    parseGatewayConfig(text, 'matssocket.yaml', { ...DEFAULTS, ...options });
  } catch (err) {
    expect(err).to.be.instanceOf(GatewayConfigError).with.property('code', ErrorCode.CONFIG_INVALID);
    return (err as GatewayConfigError).issues;
  }
  return expect.fail('expected the configuration to be refused');
}

describe('loadGatewayConfig', () => {
  it('resolves a valid file with its defaults', () => {
    const { config } = parseGatewayConfig(VALID_LINES.join('\n'), 'matssocket.yaml', DEFAULTS);
    expect(config).to.deep.include({
      nodeName: 'gw-1',
      instanceName: 'MatsSocket',
      logLevel: 'info',
      listen: { host: '127.0.0.1', port: 8099, path: '/matssocket' },
      broker: { url: 'amqp://guest:guest@127.0.0.1:5672', queuePrefix: 'mats.', concurrency: undefined },
      stopGraceMs: 5000,
      limits: { maxSessionsPerUser: 5 },
      auth: { type: 'insecure-dev', allowInsecureNonLoopback: false },
    });
    expect(config.database).to.deep.equal({
      url: 'sqlite::memory:',
      parsed: { dialect: 'sqlite', target: ':memory:' },
      poolMax: 10,
    });
    expect(config.endpoints).to.deep.equal([
      {
        id: 'Shop.placeOrder',
        to: 'Orders.placeOrder',
        mode: 'forward-essential',
        timeoutMs: undefined,
        allow: undefined,
      },
      {
        id: 'Shop.quote',
        to: 'Orders.quote',
        mode: 'forward-nonessential',
        timeoutMs: 5000,
        allow: undefined,
      },
    ]);
    expect(config.terminators).to.deep.equal([{ id: 'Shop.events', from: 'Shop.toClient.events' }]);
    expect(config.topics[1]).to.deep.equal({
      pattern: 'user.{userId}.**',
      allow: { users: [], roles: ['reader'], claims: {} },
    });
  });

  it('passes nodeReplyQueues through to the server (0..64; unset: the server default)', () => {
    const text = (extra: string): string => [...VALID_LINES, extra].join('\n');
    expect(
      parseGatewayConfig(VALID_LINES.join('\n'), 'matssocket.yaml', DEFAULTS).config.nodeReplyQueues,
    ).to.equal(undefined);
    expect(
      parseGatewayConfig(text('nodeReplyQueues: 3'), 'matssocket.yaml', DEFAULTS).config.nodeReplyQueues,
    ).to.equal(3);
    expect(issuesOf(text('nodeReplyQueues: 65')).map((i) => [i.path, i.kind])).to.deep.equal([
      ['nodeReplyQueues', 'range'],
    ]);
  });

  it('loads the example configuration of examples/gateway', async () => {
    const { config } = await loadGatewayConfig('examples/gateway/matssocket.yaml', DEFAULTS);
    expect(config.endpoints.map((e) => e.id)).to.include('Shop.placeOrder');
    expect(config.auth.type).to.equal('insecure-dev');
  });

  it('names the node <hostname>-<port> by default, <hostname>-pid<pid> on port 0', () => {
    const noName = VALID_LINES.slice(1).join('\n');
    expect(parseGatewayConfig(noName, 'f.yaml', DEFAULTS).config.nodeName).to.equal('box-8099');
    expect(
      parseGatewayConfig(noName.replace('port: 8099', 'port: 0'), 'f.yaml', DEFAULTS).config.nodeName,
    ).to.equal('box-pid7');
  });

  describe('reports each invalid field with its line and path', () => {
    const cases: { line: number; text: string | string[]; at: number; path: string; kind: string }[] = [
      { line: 1, text: 'nodeName: "gw 1"', at: 1, path: 'nodeName', kind: 'format' },
      { line: 3, text: '  port: 70000', at: 3, path: 'listen.port', kind: 'range' },
      { line: 3, text: '  port: "8080"', at: 3, path: 'listen.port', kind: 'type' },
      { line: 5, text: '  url: http://rabbit', at: 5, path: 'broker.url', kind: 'format' },
      { line: 7, text: '  url: oracle://db', at: 7, path: 'database.url', kind: 'format' },
      {
        line: 10,
        text: '    to: MatsSocket.Shop.replyHandler',
        at: 10,
        path: 'endpoints[0].to',
        kind: 'format',
      },
      { line: 13, text: '    mode: fire-and-forget', at: 13, path: 'endpoints[1].mode', kind: 'enum' },
      { line: 14, text: '    timeoutMs: 0', at: 14, path: 'endpoints[1].timeoutMs', kind: 'range' },
      { line: 14, text: '    timeoutMs: 86400001', at: 14, path: 'endpoints[1].timeoutMs', kind: 'range' },
      {
        line: 13,
        text: '    mode: forward-essential',
        at: 14,
        path: 'endpoints[1].timeoutMs',
        kind: 'conflict',
      },
      { line: 12, text: [], at: 11, path: 'endpoints[1].to', kind: 'required' },
      { line: 11, text: '  - id: Shop.placeOrder', at: 11, path: 'endpoints[1].id', kind: 'conflict' },
      { line: 17, text: '    from: Orders.quote', at: 17, path: 'terminators[0].from', kind: 'conflict' },
      { line: 19, text: '  - pattern: news..x', at: 19, path: 'topics[0].pattern', kind: 'format' },
      { line: 21, text: '    allow: { roles: [] }', at: 21, path: 'topics[1].allow', kind: 'required' },
      { line: 23, text: '  maxSessionPerUser: 5', at: 23, path: 'limits.maxSessionPerUser', kind: 'unknown' },
      { line: 23, text: '  maxSessionsPerUser: 0', at: 23, path: 'limits.maxSessionsPerUser', kind: 'range' },
      { line: 25, text: '  token: short', at: 25, path: 'admin.token', kind: 'format' },
      { line: 27, text: '  type: saml', at: 27, path: 'auth.type', kind: 'enum' },
      { line: 1, text: 'nodename: gw-1', at: 1, path: 'nodename', kind: 'unknown' },
    ];
    for (const c of cases) {
      it(`line ${c.line} '${String(c.text).trim() || '(deleted)'}' → matssocket.yaml:${c.at}: ${c.path} (${c.kind})`, () => {
        const issues = issuesOf(withLine(c.line, c.text));
        expect(
          issues.map((i) => ({ source: i.source, line: i.line, path: i.path, kind: i.kind })),
        ).to.deep.equal([{ source: 'matssocket.yaml', line: c.at, path: c.path, kind: c.kind }]);
      });
    }
  });

  it('reports every problem at once, in line order, one per line of the message', () => {
    let text = withLine(14, '    timeoutMs: 0');
    text = text
      .replace('  port: 8099', '  port: -1')
      .replace('  maxSessionsPerUser: 5', '  maxSessionsPerUser: x');
    try {
      parseGatewayConfig(text, 'matssocket.yaml', DEFAULTS);
      expect.fail('refused expected');
    } catch (err) {
      const e = err as GatewayConfigError;
      expect(e.issues.map((i) => i.line)).to.deep.equal([3, 14, 23]);
      expect(e.field).to.equal('matssocket.yaml');
      expect(e.message).to.contain(
        'matssocket.yaml:14: endpoints[1].timeoutMs: must be an integer 1..86400000',
      );
      expect(e.message.split('\n')).to.have.length(4);
    }
  });

  it('reports YAML syntax errors and duplicate keys with their line', () => {
    expect(issuesOf(withLine(3, ['  port: 8099', '  port: 8100']))).to.deep.include({
      source: 'matssocket.yaml',
      line: 4,
      column: 3,
      path: '',
      kind: 'syntax',
      message: 'Map keys must be unique',
    });
    const [issue] = issuesOf(withLine(19, '  - pattern: [news'));
    expect(issue).to.include({ kind: 'syntax' });
    expect(issue!.line).to.be.a('number');
  });

  it('reads JSON, with line numbers', () => {
    const json = JSON.stringify(
      {
        broker: { url: 'memory' },
        database: { url: 'sqlite::memory:' },
        endpoints: [{ id: 'A.b', to: 'C.d', timeoutMs: 10 }],
        auth: { type: 'insecure-dev' },
      },
      null,
      2,
    );
    const issues = issuesOf(json);
    expect(issues).to.have.length(1);
    expect(issues[0]).to.include({ path: 'endpoints[0].timeoutMs', kind: 'conflict', line: 12 });
  });

  it('requires broker, database and auth', () => {
    const issues = issuesOf('nodeName: gw-1\n');
    expect(issues.map((i) => `${i.path}:${i.kind}`)).to.have.members([
      'broker:required',
      'database:required',
      'auth:required',
    ]);
  });

  it('a missing file is one issue of kind file', async () => {
    try {
      await loadGatewayConfig('no/such/matssocket.yaml', DEFAULTS);
      expect.fail('refused expected');
    } catch (err) {
      expect(err).to.be.instanceOf(GatewayConfigError);
      expect((err as GatewayConfigError).issues).to.deep.equal([
        {
          source: 'no/such/matssocket.yaml',
          line: undefined,
          column: undefined,
          path: '',
          kind: 'file',
          message: 'cannot be read (ENOENT)',
        },
      ]);
    }
  });

  it('reads a file from disk and reports its name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gwcfg-'));
    try {
      const file = join(dir, 'gw.yaml');
      writeFileSync(file, withLine(3, '  port: big'));
      const err = await loadGatewayConfig(file, DEFAULTS).catch((e: unknown) => e);
      expect((err as GatewayConfigError).issues[0]).to.include({
        source: file,
        line: 3,
        path: 'listen.port',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('auth', () => {
    const jwt = (...lines: string[]): string =>
      [...VALID_LINES.slice(0, 25), 'auth:', '  type: jwt', ...lines.map((l) => `  ${l}`)].join('\n');
    const SECRET = 'a-shared-secret-of-at-least-32-characters';

    it('accepts jwt with a secret for HS*, and applies the claim defaults', () => {
      const { config } = parseGatewayConfig(
        jwt('algorithms: [HS256]', `secret: ${SECRET}`, 'issuer: https://idp.example.com/'),
        'f.yaml',
        DEFAULTS,
      );
      expect(config.auth).to.deep.equal({
        type: 'jwt',
        algorithms: ['HS256'],
        secret: SECRET,
        issuer: ['https://idp.example.com/'],
        userIdClaim: 'sub',
        rolesClaim: 'roles',
        clockToleranceSec: 0,
      });
    });

    it('refuses a key source that does not fit the algorithms', () => {
      const paths = (text: string): string[] => issuesOf(text).map((i) => `${i.path}:${i.kind}`);
      expect(paths(jwt('algorithms: [RS256]', `secret: ${SECRET}`))).to.deep.equal([
        'auth.algorithms:conflict',
      ]);
      expect(paths(jwt('algorithms: [HS256, RS256]', 'jwksUrl: https://idp/jwks'))).to.deep.equal([
        'auth.algorithms:conflict',
      ]);
      expect(paths(jwt('algorithms: [RS256]'))).to.deep.equal(['auth:required']);
      expect(paths(jwt('algorithms: [RS256]', 'jwksUrl: https://a/j', `secret: ${SECRET}`))).to.deep.equal([
        'auth.jwksUrl:conflict',
      ]);
      expect(paths(jwt('algorithms: [none]', `secret: ${SECRET}`))).to.deep.equal([
        'auth.algorithms[0]:enum',
      ]);
      expect(paths(jwt('algorithms: [HS256]', 'secret: too-short'))).to.deep.equal(['auth.secret:range']);
      expect(paths(jwt('algorithms: [RS256]', 'jwksUrl: http://idp.example.com/jwks'))).to.deep.equal([
        'auth.jwksUrl:format',
      ]);
      const local = jwt('algorithms: [RS256]', 'jwksUrl: http://127.0.0.1:9/jwks');
      expect(parseGatewayConfig(local, 'f', DEFAULTS).config.auth).to.include({
        jwksUrl: 'http://127.0.0.1:9/jwks',
      });
    });

    it('checks a PEM public key against the algorithms (type and curve)', () => {
      const pem = (key: { export(o: { type: 'spki'; format: 'pem' }): string | Buffer }): string[] => [
        'publicKeyPem: |',
        ...String(key.export({ type: 'spki', format: 'pem' }))
          .trim()
          .split('\n')
          .map((l) => `  ${l}`),
      ];
      const ec256 = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey;
      const ec384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey;
      expect(
        parseGatewayConfig(jwt('algorithms: [ES256]', ...pem(ec256)), 'f', DEFAULTS).config.auth.type,
      ).to.equal('jwt');
      const wrong = issuesOf(jwt('algorithms: [ES256, RS256]', ...pem(ec384)));
      expect(wrong.map((i) => `${i.path}:${i.kind}`)).to.deep.equal(['auth.publicKeyPem:conflict']);
      expect(wrong[0]!.message).to.contain('ES256, RS256');
      // Only the algorithms the JWT plugin verifies are accepted.
      expect(issuesOf(jwt('algorithms: [EdDSA]', ...pem(ec256))).map((i) => i.path)).to.include(
        'auth.algorithms[0]',
      );
      expect(
        issuesOf(jwt('algorithms: [RS256]', 'publicKeyPem: not a key')).map((i) => i.kind),
      ).to.deep.equal(['format']);
    });

    it('refuses insecure-dev on a non-loopback address unless allowInsecureNonLoopback', () => {
      const exposed = withLine(3, ['  port: 8099', '  host: 0.0.0.0']);
      expect(issuesOf(exposed).map((i) => `${i.path}:${i.kind}:${i.line}`)).to.deep.equal([
        'auth.type:conflict:28',
      ]);
      const allowed = exposed.replace(
        '  type: insecure-dev',
        '  type: insecure-dev\n  allowInsecureNonLoopback: true',
      );
      expect(parseGatewayConfig(allowed, 'f', DEFAULTS).config.auth).to.deep.equal({
        type: 'insecure-dev',
        allowInsecureNonLoopback: true,
      });
      for (const host of ['localhost', '127.0.0.2', '::1'])
        expect(
          parseGatewayConfig(withLine(3, ['  port: 1', `  host: "${host}"`]), 'f', DEFAULTS).config.auth.type,
        ).to.equal('insecure-dev');
    });
  });

  describe('environment overrides', () => {
    it('override the file, converted to the field types, and are listed by name', () => {
      const loaded = parseGatewayConfig(VALID_LINES.join('\n'), 'f.yaml', {
        ...DEFAULTS,
        env: {
          MATSSOCKET_BROKER_URL: 'memory',
          MATSSOCKET_DATABASE_URL: 'mysql://root@db:3306/gw',
          MATSSOCKET_LISTEN_PORT: '9000',
          MATSSOCKET_ADMIN_TOKEN: 'another-token-of-good-length',
          MATSSOCKET_ADMIN_ALLOWED_HOSTS: 'gw.example.com, GW2.example.com',
          MATSSOCKET_LIMITS_MAX_FRAME_BYTES: '65536',
          MATSSOCKET_JOBS_ENABLED: 'false',
          MATSSOCKET_NODE_NAME: '',
          PATH: '/usr/bin',
        },
      });
      expect(loaded.config).to.deep.include({ nodeName: 'gw-1' });
      expect(loaded.config.broker.url).to.equal('memory');
      expect(loaded.config.database.parsed).to.deep.equal({
        dialect: 'mysql',
        target: 'mysql://root@db:3306/gw',
      });
      expect(loaded.config.listen.port).to.equal(9000);
      expect(loaded.config.admin).to.deep.equal({
        token: 'another-token-of-good-length',
        allowedHosts: ['gw.example.com', 'gw2.example.com'],
      });
      expect(loaded.config.limits).to.deep.equal({ maxSessionsPerUser: 5, maxFrameBytes: 65536 });
      expect(loaded.config.jobs).to.deep.equal({ enabled: false });
      expect(loaded.envApplied).to.have.members([
        'MATSSOCKET_BROKER_URL',
        'MATSSOCKET_DATABASE_URL',
        'MATSSOCKET_LISTEN_PORT',
        'MATSSOCKET_ADMIN_TOKEN',
        'MATSSOCKET_ADMIN_ALLOWED_HOSTS',
        'MATSSOCKET_LIMITS_MAX_FRAME_BYTES',
        'MATSSOCKET_JOBS_ENABLED',
      ]);
    });

    it('fill in what the file leaves out (secrets kept out of the file)', () => {
      const text = VALID_LINES.filter((_, i) => i < 3 || i > 6).join('\n'); // no broker, no database
      const { config } = parseGatewayConfig(text, 'f.yaml', {
        ...DEFAULTS,
        env: { MATSSOCKET_BROKER_URL: 'amqp://rabbit', MATSSOCKET_DATABASE_URL: 'sqlite:gw.sqlite' },
      });
      expect(config.broker.url).to.equal('amqp://rabbit');
      expect(config.database.parsed).to.deep.equal({ dialect: 'sqlite', target: 'gw.sqlite' });
    });

    it('an invalid value is reported under the variable, without a line', () => {
      const issues = issuesOf(VALID_LINES.join('\n'), {
        env: { MATSSOCKET_LISTEN_PORT: 'eighty', MATSSOCKET_STOP_GRACE_MS: '-5' },
      });
      expect(issues.map((i) => ({ source: i.source, line: i.line, path: i.path }))).to.deep.equal([
        { source: 'MATSSOCKET_LISTEN_PORT', line: undefined, path: 'listen.port' },
        { source: 'MATSSOCKET_STOP_GRACE_MS', line: undefined, path: 'stopGraceMs' },
      ]);
    });

    it('cannot switch authentication: MATSSOCKET_AUTH_TYPE is not an override, and is reported unknown', () => {
      const loaded = parseGatewayConfig(VALID_LINES.join('\n'), 'f.yaml', {
        ...DEFAULTS,
        env: { MATSSOCKET_AUTH_TYPE: 'jwt', MATSSOCKET_DB_URL: 'sqlite:x', MATSSOCKET_FOO: '1' },
      });
      expect(loaded.config.auth.type).to.equal('insecure-dev');
      expect(loaded.envUnknown).to.deep.equal([
        { variable: 'MATSSOCKET_AUTH_TYPE', insteadUse: undefined },
        { variable: 'MATSSOCKET_DB_URL', insteadUse: 'MATSSOCKET_DATABASE_URL' },
        { variable: 'MATSSOCKET_FOO', insteadUse: undefined },
      ]);
    });

    it('a host from the environment makes insecure-dev refuse to serve', () => {
      const issues = issuesOf(VALID_LINES.join('\n'), { env: { MATSSOCKET_LISTEN_HOST: '0.0.0.0' } });
      expect(issues.map((i) => `${i.source}:${i.path}:${i.kind}`)).to.deep.equal([
        'matssocket.yaml:auth.type:conflict',
      ]);
    });
  });

  it('resolveGatewayConfig validates a program-made object the same way', () => {
    const config = resolveGatewayConfig(
      { broker: { url: 'memory' }, database: { url: 'sqlite::memory:' }, auth: { type: 'insecure-dev' } },
      DEFAULTS,
    );
    expect(config.nodeName).to.equal('box-8080');
    expect(() => resolveGatewayConfig({ broker: {}, database: {}, auth: {} }, DEFAULTS))
      .to.throw(GatewayConfigError)
      .with.property('issues')
      .that.has.length(3);
  });
});
