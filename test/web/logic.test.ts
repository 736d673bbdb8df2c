/** The dashboard's pure rules: merging a refreshed first page, comparing runs, trigger letters. */
import { describe, expect, it } from 'vitest';

import type { Run } from '../../src/core/types.js';
import { diffFields, flatten, groupByParent, mergeFirstPage, numericDelta, triggerAbbrev } from '../../web/src/logic.js';

const run = (id: string, createdAt: string): Run => ({ id, createdAt }) as Run;
const ids = (runs: Run[]) => runs.map((r) => r.id);

describe('mergeFirstPage', () => {
  const shown = [run('e', '05'), run('d', '04'), run('c', '03'), run('b', '02'), run('a', '01')];

  it('keeps rows loaded with "load more" and their cursor when new runs arrive', () => {
    // Two new runs pushed d and e... the first page (size 3) is now g, f, e.
    const merged = mergeFirstPage(shown, 'after-a', { runs: [run('g', '07'), run('f', '06'), run('e', '05')], nextCursor: 'after-e' });
    expect(ids(merged.runs)).toEqual(['g', 'f', 'e', 'd', 'c', 'b', 'a']);
    expect(merged.cursor).toBe('after-a');
  });

  it('drops rows newer than the fresh page that no longer match the filters', () => {
    // d stopped matching (e.g. it left status=running): the fresh page skips it.
    const merged = mergeFirstPage(shown, 'after-a', { runs: [run('e', '05'), run('c', '03')], nextCursor: 'after-c' });
    expect(ids(merged.runs)).toEqual(['e', 'c', 'b', 'a']);
  });

  it('takes the fresh cursor when nothing older was loaded, and the page alone when it is the last', () => {
    const first = [run('b', '02'), run('a', '01')];
    expect(mergeFirstPage(first, 'old', { runs: [run('c', '03'), run('b', '02'), run('a', '01')], nextCursor: 'after-a' })).toEqual({
      runs: [run('c', '03'), run('b', '02'), run('a', '01')],
      cursor: 'after-a',
    });
    // a was pushed off the fresh page but stays shown; the old cursor still continues after it.
    expect(mergeFirstPage(first, 'after-a', { runs: [run('c', '03'), run('b', '02')], nextCursor: 'after-b' })).toEqual({
      runs: [run('c', '03'), run('b', '02'), run('a', '01')],
      cursor: 'after-a',
    });
    expect(mergeFirstPage(shown, 'after-a', { runs: [run('e', '05')], nextCursor: null })).toEqual({
      runs: [run('e', '05')],
      cursor: null,
    });
  });

  it('orders equal creation times by id', () => {
    const merged = mergeFirstPage([run('x2', '05'), run('x1', '05')], 'c', { runs: [run('x3', '05'), run('x2', '05')], nextCursor: 'n' });
    expect(ids(merged.runs)).toEqual(['x3', 'x2', 'x1']);
  });
});

describe('diffFields', () => {
  it('keeps only the fields that differ, by dotted path, and counts the rest', () => {
    const { rows, same } = diffFields([
      { suite: 'adcp', checks: { run: 7, passed: 7 }, tags: ['a'] },
      { suite: 'adcp', checks: { run: 7, passed: 6 }, tags: ['a', 'b'] },
    ]);
    expect(rows).toEqual([
      { path: 'checks.passed', values: [7, 6] },
      { path: 'tags.1', values: [undefined, 'b'] },
    ]);
    expect(same).toBe(3);
  });

  it('treats a missing payload as no fields, and a null field as a value', () => {
    expect(diffFields([null, { verdict: 'pass' }]).rows).toEqual([{ path: 'verdict', values: [undefined, 'pass'] }]);
    expect(diffFields([{ a: null }, { a: 0 }]).rows).toEqual([{ path: 'a', values: [null, 0] }]);
    expect(diffFields([{ a: {} }, { a: [] }]).rows).toHaveLength(1);
    expect(flatten('text')).toEqual(new Map([['(value)', 'text']]));
  });

  it('compares three runs: a field differs when any one differs', () => {
    expect(diffFields([{ n: 1 }, { n: 1 }, { n: 2 }]).rows).toEqual([{ path: 'n', values: [1, 1, 2] }]);
  });

  it('returns the identical fields too, for the toggle that shows them', () => {
    const { identical, same } = diffFields([
      { a: 1, b: 2 },
      { a: 1, b: 3 },
    ]);
    expect(identical).toEqual([{ path: 'a', values: [1, 1] }]);
    expect(same).toBe(1);
  });
});

describe('numericDelta', () => {
  it('shows the change from the first run with its percentage', () => {
    expect(numericDelta(100, 112)).toBe('+12 (+12%)');
    expect(numericDelta(2, 1)).toBe('\u22121 (\u221250%)');
    expect(numericDelta(0.1, 0.4)).toBe('+0.3 (+300%)');
    expect(numericDelta(0, 5)).toBe('+5');
  });

  it('is null for equal values and for anything but two numbers', () => {
    expect(numericDelta(7, 7)).toBeNull();
    expect(numericDelta('7', 8)).toBeNull();
    expect(numericDelta(undefined, 8)).toBeNull();
    expect(numericDelta(7, null)).toBeNull();
  });
});

it('letters triggers for the subject strips', () => {
  expect(triggerAbbrev('owner_test')).toBe('OT');
  expect(triggerAbbrev('heartbeat')).toBe('H');
  expect(triggerAbbrev('schedule')).toBe('S');
  expect(triggerAbbrev(null)).toBe('·');
});

describe('groupByParent', () => {
  const r = (id: string, parentId: string | null = null) => ({ id, parentId }) as Run;
  // Page order (newest first): the children were created after their parents.
  const page = [r('c2', 'p'), r('g1', 'c1'), r('c1', 'p'), r('p'), r('orphan', 'elsewhere'), r('q')];
  const show = (rows: ReturnType<typeof groupByParent>) =>
    rows.map((x) => `${'  '.repeat(x.depth)}${x.run.id}${x.children ? ` (${x.children})` : ''}`);

  it('collapsed: children are counted on their parent and hidden; a child whose parent is not on the page stays', () => {
    expect(show(groupByParent(page, new Set()))).toEqual(['p (2)', 'orphan', 'q']);
  });

  it('expanded: children right under their parent in page order, nested', () => {
    expect(show(groupByParent(page, new Set(['p'])))).toEqual(['p (2)', '  c2', '  c1 (1)', 'orphan', 'q']);
    expect(show(groupByParent(page, new Set(['p', 'c1'])))).toEqual(['p (2)', '  c2', '  c1 (1)', '    g1', 'orphan', 'q']);
  });

  it('every run at most once, and none lost to a loop of parent links', () => {
    const loop = [r('a', 'b'), r('b', 'a'), r('self', 'self')];
    const rows = groupByParent(loop, new Set(['a', 'b']));
    expect(rows.map((x) => x.run.id).sort()).toEqual(['a', 'b', 'self']);
  });
});
