import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, ErrorCode } from '../../../src/errors.ts';
import { loadDatabaseDriver } from '../../../src/store/databaseDriver.ts';

describe('loadDatabaseDriver (the drivers are optional peer dependencies)', () => {
  let outside: string;

  before(() => {
    outside = mkdtempSync(join(tmpdir(), 'matssocket-nodriver-'));
  });

  after(() => {
    rmSync(outside, { recursive: true, force: true });
  });

  it('loads an installed driver', () => {
    const pg = loadDatabaseDriver('postgres') as { types: { getTypeParser: unknown } };
    expect(pg.types.getTypeParser).to.be.a('function');
  });

  for (const [dialect, name] of [
    ['postgres', 'pg'],
    ['mysql', 'mysql2'],
    ['sqlite', 'better-sqlite3'],
  ] as const) {
    it(`a missing ${name} is a ConfigError that says what to install`, () => {
      const from = pathToFileURL(join(outside, 'app.js')).href;
      let thrown: unknown;
      try {
        loadDatabaseDriver(dialect, from);
      } catch (err) {
        thrown = err;
      }
      expect(thrown).to.be.instanceOf(ConfigError);
      expect((thrown as ConfigError).code).to.equal(ErrorCode.CONFIG_INVALID);
      expect((thrown as Error).message).to.contain(`npm install ${name}`);
      expect((thrown as Error).cause).to.have.property('code', 'MODULE_NOT_FOUND');
    });
  }
});
