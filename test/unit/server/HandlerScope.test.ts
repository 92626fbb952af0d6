import { expect } from 'chai';
import {
  currentHandlerScope,
  HandlerScope,
  runInHandlerScope,
} from '../../../src/server/messaging/HandlerScope.ts';

describe('HandlerScope', () => {
  it('is the ambient scope while the handler runs, across awaits, and not in work it leaves behind', async () => {
    const scope = new HandlerScope();
    expect(currentHandlerScope()).to.equal(undefined);
    let later: Promise<unknown> | undefined;
    await runInHandlerScope(scope, async () => {
      expect(currentHandlerScope()).to.equal(scope);
      await Promise.resolve();
      expect(currentHandlerScope()).to.equal(scope);
      later = new Promise((resolve) => setImmediate(() => resolve(currentHandlerScope())));
    });
    scope.close();
    expect(scope.active).to.equal(false);
    expect(await later).to.equal(undefined);
    expect(currentHandlerScope()).to.equal(undefined);
  });
});
