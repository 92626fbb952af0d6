import { expect } from 'chai';
import { ConfigError, ErrorCode } from '../../../src/errors.ts';
import { parseDatabaseUrl, redactUrl } from '../../../src/store/database.ts';

describe('parseDatabaseUrl()', () => {
  it('accepts every documented URL form', () => {
    expect(parseDatabaseUrl('mysql://root@127.0.0.1:3306/db')).to.deep.equal({
      dialect: 'mysql',
      target: 'mysql://root@127.0.0.1:3306/db',
    });
    expect(parseDatabaseUrl('mariadb://u:p@h/db').dialect).to.equal('mysql');
    expect(parseDatabaseUrl('mariadb://u:p@h/db').target).to.equal('mysql://u:p@h/db');
    expect(parseDatabaseUrl('postgres://h/db').dialect).to.equal('postgres');
    expect(parseDatabaseUrl('postgresql://h/db').dialect).to.equal('postgres');
    expect(parseDatabaseUrl('sqlite:data/matssocket.sqlite')).to.deep.equal({
      dialect: 'sqlite',
      target: 'data/matssocket.sqlite',
    });
    expect(parseDatabaseUrl('sqlite::memory:').target).to.equal(':memory:');
  });

  it('names the field and hides the password in errors', () => {
    const fn = () => parseDatabaseUrl('oracle://scott:tiger@h/db', 'MATSSOCKET_DB_URL');
    expect(fn).to.throw(ConfigError).with.property('field', 'MATSSOCKET_DB_URL');
    expect(fn).to.throw(ConfigError).with.property('code', ErrorCode.CONFIG_INVALID);
    expect(fn).to.throw(/scott:\*\*\*@h/);
    expect(() => parseDatabaseUrl('sqlite:')).to.throw(ConfigError);
  });

  it('redacts passwords', () => {
    expect(redactUrl('mysql://root:secret@h:3306/db')).to.equal('mysql://root:***@h:3306/db');
    expect(redactUrl('mysql://root@h/db')).to.equal('mysql://root@h/db');
  });
});
