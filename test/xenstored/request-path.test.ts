/**
 * The daemon's request path as made cheap: expected errors carry no stack, reads work on the store
 * without forking it, and watch permissions are asked only when a watch matches. Behaviour must not change.
 */
import { describe, expect, it } from 'vitest';
import { XsError } from '../../emulator/xenstored/errors.js';
import { describeStep, ProtocolRig, type Step } from './harness.js';

describe('XsError', () => {
  it('is an Error with the errno, the detail in its message and no stack frames', () => {
    const e = new XsError('ENOENT', '/local/domain/5/x');
    expect(e).toBeInstanceOf(Error);
    expect(e.errno).toBe('ENOENT');
    expect(e.name).toBe('XsError');
    expect(e.message).toBe('ENOENT: /local/domain/5/x');
    expect(new XsError('EAGAIN').message).toBe('EAGAIN');
    expect(e.stack ?? '').not.toMatch(/\n\s+at /);
  });

  it('leaves the stack depth of other errors alone', () => {
    new XsError('EINVAL');
    expect(new Error('x').stack).toMatch(/\n\s+at /);
  });
});

describe('reads change nothing', () => {
  const reads: Step[] = [
    { as: 'd0', op: 'READ', args: ['/a/b'], expect: 'v' },
    { as: 'd0', op: 'READ', args: ['/a/none'], expect: 'ENOENT' },
    { as: 'g5', op: 'READ', args: ['/a/b'], expect: 'EACCES' },
    { as: 'd0', op: 'DIRECTORY', args: ['/a'], expect: 'b|' },
    { as: 'd0', op: 'DIRECTORY', args: ['/none'], expect: 'ENOENT' },
    { as: 'd0', op: 'GET_PERMS', args: ['/a/b'], expect: 'n0|' },
    { as: 'g5', op: 'GET_PERMS', args: ['/none/deeper'], expect: 'EACCES' },
  ];
  it.each(reads.map((s, i) => [describeStep(s, i), s] as const))('%s', (_, step) => {
    const rig = new ProtocolRig();
    expect(rig.run({ as: 'd0', op: 'WRITE', args: ['/a/b', 'v'], expect: 'OK|' }).reply).toBe('OK|');
    const before = {
      generation: rig.xs.generation,
      tree: rig.xs.snapshot('/'),
      owned: rig.xs.nodesOwnedBy(0),
    };
    expect(rig.run(step).reply).toBe(step.expect);
    expect({
      generation: rig.xs.generation,
      tree: rig.xs.snapshot('/'),
      owned: rig.xs.nodesOwnedBy(0),
    }).toEqual(before);
  });

  it('a read inside a transaction still counts for the commit check (EAGAIN after a concurrent write)', () => {
    const rig = new ProtocolRig();
    const steps: Step[] = [
      { as: 'd0', op: 'WRITE', args: ['/a', '1'], expect: 'OK|' },
      { as: 'd0', op: 'TRANSACTION_START', args: [''], expect: '1|' },
      { as: 'd0', tx: 1, op: 'READ', args: ['/a'], expect: '1' },
      { as: 'd0', tx: 1, op: 'READ', args: ['/missing'], expect: 'ENOENT' },
      { as: 'd0', tx: 1, op: 'WRITE', args: ['/c', 'x'], expect: 'OK|' },
      { as: 'd0', op: 'WRITE', args: ['/missing', 'now here'], expect: 'OK|' },
      { as: 'd0', tx: 1, op: 'TRANSACTION_END', args: ['T'], expect: 'EAGAIN' },
      { as: 'd0', op: 'READ', args: ['/c'], expect: 'ENOENT' },
    ];
    for (const [i, s] of steps.entries()) expect(rig.run(s).reply, describeStep(s, i)).toBe(s.expect);
  });
});

describe('snapshots stay isolated while the live store changes its nodes in place', () => {
  it('after a commit, live writes and removals do not show through a later snapshot', () => {
    const rig = new ProtocolRig();
    const steps: Step[] = [
      { as: 'd0', op: 'WRITE', args: ['/a/b', '1'], expect: 'OK|' },
      { as: 'd0', op: 'TRANSACTION_START', args: [''], expect: '1|' },
      { as: 'd0', tx: 1, op: 'WRITE', args: ['/a/c', 'tx'], expect: 'OK|' },
      { as: 'd0', op: 'WRITE', args: ['/a/b', '2'], expect: 'OK|' },
      { as: 'd0', tx: 1, op: 'DIRECTORY', args: ['/a'], expect: 'b|c|' },
      { as: 'd0', tx: 1, op: 'TRANSACTION_END', args: ['T'], expect: 'OK|' },
      { as: 'd0', op: 'READ', args: ['/a/b'], expect: '2' },
      { as: 'd0', op: 'WRITE', args: ['/a/b', '3'], expect: 'OK|' },
      { as: 'd0', op: 'TRANSACTION_START', args: [''], expect: '2|' },
      { as: 'd0', op: 'WRITE', args: ['/a/b', '4'], expect: 'OK|' },
      { as: 'd0', op: 'RM', args: ['/a/c'], expect: 'OK|' },
      { as: 'd0', tx: 2, op: 'READ', args: ['/a/b'], expect: '3' },
      { as: 'd0', tx: 2, op: 'DIRECTORY', args: ['/a'], expect: 'b|c|' },
      { as: 'd0', tx: 2, op: 'READ', args: ['/a/c'], expect: 'tx' },
      { as: 'd0', tx: 2, op: 'TRANSACTION_END', args: ['F'], expect: 'OK|' },
      { as: 'd0', op: 'READ', args: ['/a/b'], expect: '4' },
      { as: 'd0', op: 'DIRECTORY', args: ['/a'], expect: 'b|' },
    ];
    for (const [i, s] of steps.entries()) expect(rig.run(s).reply, describeStep(s, i)).toBe(s.expect);
    rig.xs.checkStore();
  });
});

describe('watch events and permissions', () => {
  it('a matching watch without read access hears nothing; others hear theirs once', () => {
    const rig = new ProtocolRig();
    const steps: Step[] = [
      { as: 'd0', op: 'MKDIR', args: ['/local/domain/5'], expect: 'OK|' },
      { as: 'd0', op: 'SET_PERMS', args: ['/local/domain/5', 'n5'], expect: 'OK|' },
      {
        as: 'g6',
        op: 'WATCH',
        args: ['/local/domain/5', 'spy'],
        expect: 'OK|',
        events: { g6: ['/local/domain/5|spy'] },
      },
      { as: 'g5', op: 'WATCH', args: ['data', 'mine'], expect: 'OK|', events: { g5: ['data|mine'] } },
      {
        as: 'g5',
        op: 'WATCH',
        args: ['/elsewhere', 'other'],
        expect: 'OK|',
        events: { g5: ['/elsewhere|other'] },
      },
      {
        as: 'g5',
        op: 'WRITE',
        args: ['data/x', '1'],
        expect: 'OK|',
        events: { g5: ['data/x|mine'] },
      },
      // Read access for g6 on the node: now its watch on the ancestor hears the write too.
      {
        as: 'g5',
        op: 'SET_PERMS',
        args: ['data/x', 'n5', 'r6'],
        expect: 'OK|',
        events: { g5: ['data/x|mine'], g6: ['/local/domain/5/data/x|spy'] },
      },
      {
        as: 'g5',
        op: 'WRITE',
        args: ['data/x', '2'],
        expect: 'OK|',
        events: { g5: ['data/x|mine'], g6: ['/local/domain/5/data/x|spy'] },
      },
    ];
    steps.forEach((s, i) => {
      const { reply, events } = rig.run(s);
      expect(reply, describeStep(s, i)).toBe(s.expect);
      expect(events, `${describeStep(s, i)} events`).toEqual(s.events ?? {});
    });
  });
});
