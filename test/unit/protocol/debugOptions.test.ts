import { expect } from 'chai';
import {
  DebugOption,
  replyDebugInfo,
  resolveDebugOptions,
  s2cDebugOptionsAfterFrame,
  serverInitiatedDebugAtCreation,
  serverInitiatedDebugAtWrite,
  stampDebugAtWrite,
} from '../../../src/protocol/debugOptions.ts';
import { isInformationBearing, isMessageType, MessageType } from '../../../src/protocol/MessageType.ts';

const { TIMESTAMPS, NODES, CUSTOM_A } = DebugOption;

describe('debugOptions (section 5)', () => {
  it('has the bits of the spec', () => {
    expect(DebugOption).to.deep.equal({ TIMESTAMPS: 1, NODES: 2, CUSTOM_A: 64, CUSTOM_B: 128 });
  });

  it('resolves requested AND allowed', () => {
    expect(resolveDebugOptions(TIMESTAMPS | NODES, NODES)).to.equal(NODES);
    expect(resolveDebugOptions(undefined, 255)).to.equal(0);
  });

  describe('s2cDebugOptionsAfterFrame() (rule 1)', () => {
    it('uses the last envelope with rd, ANDed with allowed', () => {
      expect(s2cDebugOptionsAfterFrame([{ rd: 1 }, {}, { rd: 3 }], 2, 0)).to.equal(2);
    });

    it('leaves the setting unchanged for frames without rd, and rd 0 resets it', () => {
      expect(s2cDebugOptionsAfterFrame([{}, {}], 3, 3)).to.equal(3);
      expect(s2cDebugOptionsAfterFrame([{ rd: 0 }], 3, 3)).to.equal(0);
    });
  });

  describe('replyDebugInfo()', () => {
    const fields = { cmrts: 1, cmrnn: 'n1', mmsts: 2, mmrrts: 3, mmrrnn: 'n2' };

    it('has no debug when resolved is empty', () => {
      expect(replyDebugInfo(0, fields)).to.equal(undefined);
    });

    it('adds the timestamp and node subsets of the forwarded path', () => {
      expect(replyDebugInfo(TIMESTAMPS, fields)).to.deep.equal({ resd: 1, cmrts: 1, mmsts: 2, mmrrts: 3 });
      expect(replyDebugInfo(NODES, fields)).to.deep.equal({ resd: 2, cmrnn: 'n1', mmrrnn: 'n2' });
    });

    it('has only cmrts/cmrnn on the insta path, and resd alone for custom bits', () => {
      expect(replyDebugInfo(TIMESTAMPS | NODES, { cmrts: 1, cmrnn: 'n1' })).to.deep.equal({
        resd: 3,
        cmrts: 1,
        cmrnn: 'n1',
      });
      expect(replyDebugInfo(CUSTOM_A, fields)).to.deep.equal({ resd: 64 });
    });
  });

  it('stampDebugAtWrite() adds mscts/mscnn per resd', () => {
    expect(stampDebugAtWrite(undefined, 'node', 9)).to.equal(undefined);
    expect(stampDebugAtWrite({ resd: 1, cmrts: 1 }, 'node', 9)).to.deep.equal({
      resd: 1,
      cmrts: 1,
      mscts: 9,
    });
    expect(stampDebugAtWrite({ resd: 2 }, 'node', 9)).to.deep.equal({ resd: 2, mscnn: 'node' });
  });

  describe('serverInitiatedDebugAtWrite() (rules 2 and 3)', () => {
    const created = serverInitiatedDebugAtCreation('creator', 5);

    it('records smcts and smcnn at creation', () => {
      expect(created).to.deep.equal({ smcts: 5, smcnn: 'creator' });
    });

    it('removes debug entirely when the options are empty', () => {
      expect(serverInitiatedDebugAtWrite(created, 0, 'writer', 9)).to.equal(undefined);
    });

    it('keeps exactly the field subsets of the options', () => {
      expect(serverInitiatedDebugAtWrite(created, TIMESTAMPS, 'writer', 9)).to.deep.equal({
        resd: 1,
        smcts: 5,
        mscts: 9,
      });
      expect(serverInitiatedDebugAtWrite(created, NODES, 'writer', 9)).to.deep.equal({
        resd: 2,
        smcnn: 'creator',
        mscnn: 'writer',
      });
      expect(serverInitiatedDebugAtWrite(created, CUSTOM_A, 'writer', 9)).to.deep.equal({ resd: 64 });
    });
  });
});

describe('MessageType', () => {
  it('lists the twenty types of section 4', () => {
    expect(Object.keys(MessageType)).to.have.length(20);
    expect(isMessageType('SUB_NO_AUTH')).to.equal(true);
    expect(isMessageType('toString')).to.equal(false);
  });

  it('knows the information-bearing types', () => {
    expect(['SEND', 'REQUEST', 'RESOLVE', 'REJECT'].every(isInformationBearing)).to.equal(true);
    expect(['PUB', 'ACK', 'HELLO'].some(isInformationBearing)).to.equal(false);
  });
});
