import { expect } from 'chai';
import { MatsIllegalCallError } from '../../../src/mats/MatsErrors.ts';
import {
  derivedFlowId,
  derivedSuffix,
  newFlowId,
  resolveEndpointId,
  sanitizeId,
  stageIdOf,
  validateEndpointId,
} from '../../../src/mats/matsIds.ts';

describe('matsIds', () => {
  it('validates application endpoint ids', () => {
    for (const ok of ['OrderService.placeOrder', 'a', 'A-b_c.d', 'x'.repeat(200)])
      expect(() => validateEndpointId(ok)).to.not.throw();
    for (const bad of ['', 'has space', 'col:on', 'x'.repeat(201), 'ü']) {
      expect(() => validateEndpointId(bad), bad)
        .to.throw(MatsIllegalCallError)
        .with.property('code', 'MATS_ILLEGAL_CALL');
    }
  });

  it('prefixes ".x" with the common group id and names stages', () => {
    expect(resolveEndpointId('.place', 'Orders')).to.equal('Orders.place');
    expect(resolveEndpointId('Other.x', 'Orders')).to.equal('Other.x');
    expect(stageIdOf('E', 0)).to.equal('E');
    expect(stageIdOf('E', 3)).to.equal('E.stage3');
  });

  it('sanitizes generated ids', () => {
    expect(sanitizeId('App.Futurizer.private.repliesFor.host:1/pod é')).to.equal(
      'App.Futurizer.private.repliesFor.host_1_pod__',
    );
    expect(sanitizeId('')).to.equal('_');
  });

  it('flow ids follow m_<10 alnum>_T<base36 millis>; derived ids are deterministic', () => {
    expect(newFlowId(1_700_000_000_000)).to.match(/^m_[A-Za-z0-9]{10}_T[0-9a-z]+$/);
    expect(newFlowId(1)).to.not.equal(newFlowId(1));
    expect(derivedFlowId('seed', 5)).to.equal(derivedFlowId('seed', 5));
    expect(derivedFlowId('seed', 5)).to.match(/^m_[A-Za-z0-9]{10}_T5$/);
    expect(derivedSuffix('a#0')).to.equal(derivedSuffix('a#0'));
    expect(derivedSuffix('a#0')).to.not.equal(derivedSuffix('a#1'));
  });
});
