import { expect } from 'chai';
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { HandshakeRefusedError, RawClient } from '../../helpers/rawClient.ts';
import { testAuth, testAuthPlugin } from '../../../harness/startTestCluster.ts';
import { describeEachServerEnv } from './serverTestKit.ts';

describeEachServerEnv(
  'MatsSocketServer handshake hooks (2.1)',
  {
    nodes: 1,
    envs: ['in-memory + SQLite'],
    auth: (connection) => ({
      ...testAuthPlugin(),
      checkOrigin: (origin) => origin !== 'http://evil.example',
      checkHandshake: (request: IncomingMessage, headers) => {
        if (request.headers['x-refuse'] === 'throw') throw new Error('refused by test');
        if (request.headers['x-refuse'] === 'yes') return false;
        headers['Set-Cookie'] = `MatsSocketAuthCookie=; Expires=Thu, 01 Jan 1970 00:00:00 GMT`;
        headers['X-Connection'] = connection.connectionId.length > 0 ? 'has-id' : 'no-id';
        return true;
      },
      onOpen: (info) => info.request.headers['x-refuse-open'] !== 'yes',
    }),
  },
  (ctx) => {
    const url = (): string => ctx().cluster.nodes[0]!.url;

    async function refusal(headers: Record<string, string>): Promise<unknown> {
      return RawClient.connect(url(), { headers }).then(
        (c) => c.close(),
        (e: unknown) => e,
      );
    }

    it('checkOrigin false → HTTP 403', async () => {
      expect(await refusal({ Origin: 'http://evil.example' }))
        .to.be.instanceOf(HandshakeRefusedError)
        .with.property('status', 403);
    });

    it('checkHandshake false or throwing → HTTP 403', async () => {
      expect(await refusal({ 'x-refuse': 'yes' })).to.have.property('status', 403);
      expect(await refusal({ 'x-refuse': 'throw' })).to.have.property('status', 403);
    });

    it('checkHandshake adds headers to the 101 response', async () => {
      const ws = new WebSocket(url(), ['matssocket']);
      const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
        ws.once('upgrade', (res) => resolve(res.headers));
        ws.once('error', reject);
      });
      await new Promise((resolve) => {
        ws.once('close', resolve);
        if (ws.readyState === WebSocket.OPEN) ws.close();
        else ws.once('open', () => ws.close());
      });
      expect(headers['set-cookie']).to.deep.equal([
        'MatsSocketAuthCookie=; Expires=Thu, 01 Jan 1970 00:00:00 GMT',
      ]);
      expect(headers['x-connection']).to.equal('has-id');
      expect(headers['sec-websocket-protocol']).to.equal('matssocket');
    });

    it('onOpen false → close 1008', async () => {
      const client = await RawClient.connect(url(), { headers: { 'x-refuse-open': 'yes' } });
      const closed = await client.closed();
      expect(closed.code).to.equal(1008);
      expect(closed.reason).to.not.equal('');
    });

    it('a normal handshake passes all hooks', async () => {
      const client = await RawClient.connect(url(), { headers: { Origin: 'http://localhost:3000' } });
      expect((await client.hello(testAuth('standard'))).sid).to.be.a('string');
      await client.close(4000, 'done');
    });
  },
);
