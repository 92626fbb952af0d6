import { expect } from 'chai';
import { briefError, describeError } from '../../../src/mats/DeadLetter.ts';
import { DataAccessError } from '../../../src/errors.ts';

/** What a failed outbox insert looks like: knex puts the SQL with every binding (bodies in hex) in the message. */
function duplicateOutboxInsert(): Error {
  const hex = 'ab'.repeat(20_000);
  const driver = Object.assign(
    new Error(
      `insert into \`mats_outbox\` (\`body\`, \`mats_message_id\`) values (X'${hex}', 'm-1') - Duplicate entry 'm-1' for key 'mats_outbox_msgid_uq'`,
    ),
    { code: 'ER_DUP_ENTRY', errno: 1062 },
  );
  return new DataAccessError(`Mats outbox insert failed: ${driver.message}`, { cause: driver });
}

describe('describeError / briefError (dead-letter header and log text)', () => {
  it('drop the SQL knex prefixes to driver messages, keeping code and message', () => {
    const text = describeError(duplicateOutboxInsert());
    expect(text).to.not.contain('ababab');
    expect(text).to.not.match(/insert into/i);
    expect(text).to.contain("Duplicate entry 'm-1' for key 'mats_outbox_msgid_uq'");
    expect(text).to.contain("for key 'mats_outbox_msgid_uq' [ER_DUP_ENTRY]");
    expect(text.length).to.be.below(4000);
  });

  it('briefError is one line: Class: message [code] of the error and its causes, bounded', () => {
    const text = briefError(duplicateOutboxInsert());
    expect(text).to.not.contain('\n');
    expect(text).to.match(
      /^DataAccessError: Mats outbox insert failed: Duplicate entry .* \[DATA_ACCESS\] <- /,
    );
    expect(text).to.contain("<- Error: Duplicate entry 'm-1' for key 'mats_outbox_msgid_uq' [ER_DUP_ENTRY]");
    expect(briefError(new Error('x'.repeat(2000)), 100)).to.have.length(100);
  });

  it('describeError keeps the cause chain and stack frames', () => {
    const err = new Error('outer', { cause: new TypeError('inner') });
    const text = describeError(err);
    expect(text).to.match(/^Error: outer\n\s+at /);
    expect(text).to.contain('Caused by: TypeError: inner');
  });
});
