import { expect } from 'chai';
import {
  clientActionOnClose,
  CloseCode,
  closeCodeName,
  serverSessionActionOnClose,
  truncateCloseReason,
} from '../../../src/protocol/closeCodes.ts';

function utf8Bytes(s: string): number {
  return new TextEncoder().encode(s).length;
}

describe('closeCodes', () => {
  it('has the codes of section 6 with their names', () => {
    expect(CloseCode).to.include({
      NORMAL: 1000,
      GOING_AWAY: 1001,
      VIOLATED_POLICY: 1008,
      MESSAGE_TOO_BIG: 1009,
      UNEXPECTED_CONDITION: 1011,
      SERVICE_RESTART: 1012,
      CLOSE_SESSION: 4000,
      SESSION_LOST: 4001,
      RECONNECT: 4002,
      DISCONNECT: 4003,
      MATS_SOCKET_PROTOCOL_ERROR: 4004,
    });
    expect(closeCodeName(4000)).to.equal('CLOSE_SESSION');
    expect(closeCodeName(1008)).to.equal('VIOLATED_POLICY');
    expect(closeCodeName(3999)).to.equal('UNKNOWN(3999)');
  });

  describe('serverSessionActionOnClose() (section 6, server side)', () => {
    it('terminates when the server closed with 1008, 1011, 4000, 4001 or 4004', () => {
      for (const code of [1008, 1011, 4000, 4001, 4004]) {
        expect(serverSessionActionOnClose(code, 'server'), String(code)).to.equal('terminate');
      }
    });

    it('deregisters when the server closed with 1001, 1009, 1012, 4002, 4003 (or anything else)', () => {
      for (const code of [1000, 1001, 1009, 1012, 4002, 4003]) {
        expect(serverSessionActionOnClose(code, 'server'), String(code)).to.equal('deregister');
      }
    });

    it('terminates when the client closed with 1001, 1008, 1011, 4000, 4001 or 4004', () => {
      for (const code of [1001, 1008, 1011, 4000, 4001, 4004]) {
        expect(serverSessionActionOnClose(code, 'client'), String(code)).to.equal('terminate');
      }
    });

    it('deregisters when the client closed with any other code or the TCP connection dropped', () => {
      for (const code of [1000, 1006, 1012, 4002, 4003, 3000]) {
        expect(serverSessionActionOnClose(code, 'client'), String(code)).to.equal('deregister');
      }
    });

    it('treats 1001 oppositely depending on who closed', () => {
      expect(serverSessionActionOnClose(1001, 'client')).to.equal('terminate');
      expect(serverSessionActionOnClose(1001, 'server')).to.equal('deregister');
    });
  });

  describe('clientActionOnClose() (section 6, client side)', () => {
    it('closes the session on 1008, 1011, 4000, 4001, 4004', () => {
      for (const code of [1008, 1011, 4000, 4001, 4004]) {
        expect(clientActionOnClose(code), String(code)).to.equal('closeSession');
      }
    });

    it('does not reconnect by itself on 4003', () => {
      expect(clientActionOnClose(4003)).to.equal('awaitNewMessage');
    });

    it('reconnects on any other code', () => {
      for (const code of [1000, 1001, 1006, 1009, 1012, 4002]) {
        expect(clientActionOnClose(code), String(code)).to.equal('reconnect');
      }
    });
  });

  describe('truncateCloseReason()', () => {
    it('leaves short reasons alone', () => {
      expect(truncateCloseReason('From client: bye')).to.equal('From client: bye');
      expect(truncateCloseReason('')).to.equal('');
    });

    it('cuts ASCII at 123 bytes', () => {
      const result = truncateCloseReason('x'.repeat(200));
      expect(result).to.equal('x'.repeat(123));
    });

    it('never exceeds 123 UTF-8 bytes and never splits a character', () => {
      for (const char of ['æ', '€', '\u{1F600}']) {
        const result = truncateCloseReason('a' + char.repeat(100));
        expect(utf8Bytes(result)).to.be.at.most(123);
        expect(utf8Bytes(result) + utf8Bytes(char)).to.be.greaterThan(123);
        expect(result).to.equal('a' + char.repeat([...result].length - 1));
      }
    });

    it('accepts a custom byte limit', () => {
      expect(truncateCloseReason('æøå', 4)).to.equal('æø');
    });

    it('counts a lone surrogate as 3 bytes', () => {
      expect(utf8Bytes(truncateCloseReason('\uD800'.repeat(50)))).to.be.at.most(123);
      expect(truncateCloseReason('\uD800'.repeat(50))).to.have.length(41);
    });
  });
});
