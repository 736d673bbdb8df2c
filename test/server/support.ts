/** Helpers for the HTTP tests: in-process requests (app.inject) with parsed JSON answers. */
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';

export interface Answer {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  headers: Record<string, string | string[] | number | undefined>;
  text: string;
}

export function api(app: FastifyInstance, defaults: { token?: string } = {}) {
  return async function call(
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT',
    url: string,
    payload?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Answer> {
    const h: Record<string, string> = { ...headers };
    if (defaults.token && !('authorization' in h)) h.authorization = `Bearer ${defaults.token}`;
    const res = await app.inject({
      method,
      url,
      headers: h,
      ...(payload === undefined
        ? {}
        : typeof payload === 'string' || Buffer.isBuffer(payload)
          ? { payload }
          : { payload: payload as object }),
    });
    let body: unknown;
    try {
      body = res.body ? JSON.parse(res.body) : undefined;
    } catch {
      body = undefined;
    }
    return { status: res.statusCode, body, headers: res.headers, text: res.body };
  };
}

/** Asserts an RFC 9457 problem with `status` and `code`; returns its body. */
export function expectProblem(res: Answer, status: number, code: string) {
  expect({ status: res.status, code: res.body?.code }, res.text).toEqual({ status, code });
  expect(String(res.headers['content-type'])).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ type: expect.any(String), title: expect.any(String), status, detail: expect.any(String), code });
  expect(Array.isArray(res.body.errors)).toBe(true);
  return res.body as { detail: string; errors: { field?: string; message: string }[] };
}
