import { expect } from 'chai';
import { DataAccessError } from '../../../src/errors.ts';
import { causedByUniqueViolation, isDatabaseUnavailable, isRetryable } from '../../../src/store/sqlErrors.ts';

const withCode = (code: string, extra: object = {}): Error => Object.assign(new Error(code), { code }, extra);

describe('sqlErrors', () => {
  describe('isDatabaseUnavailable()', () => {
    it('is true for a database that cannot be reached: refused, reset, shut down, pool exhausted', () => {
      for (const err of [
        withCode('ECONNREFUSED'),
        withCode('ECONNRESET'),
        withCode('PROTOCOL_CONNECTION_LOST'),
        withCode('ER_SERVER_SHUTDOWN'),
        withCode('57P01'), // PostgreSQL admin_shutdown
        withCode('08006'), // PostgreSQL connection_failure
        Object.assign(new Error("Can't add new command when connection is in closed state"), { fatal: true }),
        Object.assign(new Error('Knex: Timeout acquiring a connection.'), { name: 'KnexTimeoutError' }),
        new Error('Connection terminated unexpectedly'),
        new DataAccessError('database not reachable within 5000 ms'),
      ]) {
        expect(isDatabaseUnavailable(err), err.message).to.equal(true);
      }
    });

    it('looks through cause chains (our DataAccessError wraps the driver error)', () => {
      const wrapped = new DataAccessError('insert outbox failed', { cause: withCode('ECONNREFUSED') });
      expect(isDatabaseUnavailable(wrapped)).to.equal(true);
      expect(isDatabaseUnavailable(new Error('stage failed', { cause: wrapped }))).to.equal(true);
    });

    it('is false for statements failing on a working database, and for other errors', () => {
      for (const err of [
        withCode('ER_DUP_ENTRY', { errno: 1062 }),
        withCode('ER_LOCK_DEADLOCK', { errno: 1213 }),
        withCode('ER_PARSE_ERROR'),
        withCode('23505'),
        new DataAccessError('insert failed: Duplicate entry'),
        new TypeError('x is undefined'),
        'a string',
        undefined,
      ]) {
        expect(isDatabaseUnavailable(err), String(err)).to.equal(false);
      }
      expect(isRetryable(withCode('ER_LOCK_DEADLOCK', { errno: 1213 }))).to.equal(true);
    });
  });

  describe('causedByUniqueViolation()', () => {
    it('finds a unique violation of any driver, also wrapped, and nothing else', () => {
      for (const err of [
        withCode('ER_DUP_ENTRY', { errno: 1062 }),
        withCode('23505'),
        withCode('SQLITE_CONSTRAINT_UNIQUE'),
        new DataAccessError('insert failed', { cause: withCode('ER_DUP_ENTRY') }),
        new Error('batch', { cause: new DataAccessError('x', { cause: withCode('23505') }) }),
      ]) {
        expect(causedByUniqueViolation(err), String(err)).to.equal(true);
      }
      for (const err of [
        withCode('ECONNREFUSED'),
        new DataAccessError('insert failed: Duplicate entry'),
        undefined,
      ]) {
        expect(causedByUniqueViolation(err), String(err)).to.equal(false);
      }
    });
  });
});
