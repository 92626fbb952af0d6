import type { IncomingMessage } from 'node:http';

/** Why a request body could not be read as JSON. */
export type RequestBodyErrorCode = 'BODY_TOO_LARGE' | 'INVALID_JSON' | 'BODY_ABORTED';

/** A request body that is too large, not JSON, or was cut off; `code` says which. */
export class RequestBodyError extends Error {
  readonly code: RequestBodyErrorCode;

  constructor(code: RequestBodyErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RequestBodyError';
    this.code = code;
  }
}

/**
 * Reads a request body of at most `maxBytes` and parses it as JSON (an empty body is `emptyValue`).
 *
 * A body over the cap is refused without buffering it: at once when `content-length` says so, otherwise as soon as
 * the count passes the cap. The rest of it is read and dropped, never destroyed: destroying the request would
 * destroy the socket and with it the 413 the caller is about to write. Node's `requestTimeout` bounds how long a
 * peer can keep sending.
 * @throws RequestBodyError `BODY_TOO_LARGE`, `INVALID_JSON` or `BODY_ABORTED`.
 */
export function readJsonBody(
  request: IncomingMessage,
  maxBytes: number,
  emptyValue: unknown = undefined,
): Promise<unknown> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    request.resume();
    return Promise.reject(tooLarge(maxBytes));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('error', onError);
      request.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= maxBytes) {
        chunks.push(chunk);
        return;
      }
      cleanup();
      chunks.length = 0;
      // Still flowing without a 'data' listener: what else comes is dropped.
      request.resume();
      reject(tooLarge(maxBytes));
    };
    const onEnd = (): void => {
      cleanup();
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim().length === 0) {
        resolve(emptyValue);
        return;
      }
      try {
        resolve(JSON.parse(text) as unknown);
      } catch (err) {
        reject(new RequestBodyError('INVALID_JSON', 'the body is not valid JSON', { cause: err }));
      }
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new RequestBodyError('BODY_ABORTED', 'the request body was cut off', { cause: err }));
    };
    const onClose = (): void => {
      if (request.complete) return;
      cleanup();
      reject(new RequestBodyError('BODY_ABORTED', 'the request body was cut off'));
    };
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('error', onError);
    request.on('close', onClose);
  });
}

function tooLarge(maxBytes: number): RequestBodyError {
  return new RequestBodyError('BODY_TOO_LARGE', `the body is larger than ${maxBytes} bytes`);
}
