import { v7 as uuidv7 } from 'uuid';

/** Run ids: 1–128 of letters, digits and `._:@+-`. */
export const RUN_ID_PATTERN = /^[A-Za-z0-9._:@+-]{1,128}$/;

/** A new time-ordered run id; generated client-side so that a retried create is safe. */
export function newRunId(): string {
  return uuidv7();
}
