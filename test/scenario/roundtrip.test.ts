import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { formatScenario } from '../../emulator/scenario/format.js';
import { parseScenario, scenario } from '../../emulator/scenario/load.js';
import {
  type BlkfrontParams,
  DOMAIN_STATES,
  type Expectations,
  type Fault,
  FIO_RW,
  type GuestAction,
  type Pattern,
  type Scenario,
  type Step,
  type TextMatcher,
  VERSION_SWITCHES,
  type Versions,
  type WaitCondition,
} from '../../emulator/scenario/model.js';

const KiB = 1024;
const MiB = 1024 * KiB;

const guests = ['guest1', 'guest2'];
const images = ['disk.img', 'data/b.vhd'];

const sectors = (max: number) => fc.integer({ min: 0, max }).map((n) => n * 512);
const lengths = fc.integer({ min: 1, max: 4096 }).map((n) => n * 512);
const ms = fc.oneof(
  fc.integer({ min: 0, max: 100_000 }),
  fc.integer({ min: 1, max: 100_000 }).map((us) => us / 1000),
  fc.integer({ min: 0, max: 120 }).map((m) => m * 60_000),
);
const text = fc.string({ minLength: 1, maxLength: 12 }).filter((s) => s.trim() !== '');
const xsPath = fc
  .array(fc.stringMatching(/^[A-Za-z0-9_@-]{1,8}$/), { minLength: 1, maxLength: 5 })
  .map((parts) => `/${parts.join('/')}`);
const pattern: fc.Arbitrary<Pattern> = fc.oneof(
  fc.constantFrom<Pattern>({ kind: 'zero' }, { kind: 'ones' }, { kind: 'seq' }),
  fc.integer({ min: 0, max: 0xffff_ffff }).map((seed): Pattern => ({ kind: 'random', seed })),
  fc
    .uint8Array({ minLength: 1, maxLength: 8 })
    .map((b): Pattern => ({ kind: 'bytes', hex: Buffer.from(b).toString('hex') })),
);
const matcher: fc.Arbitrary<TextMatcher> = fc.oneof(
  text.filter((t) => !/^\/.+\/[imsu]*$/s.test(t)).map((t): TextMatcher => ({ kind: 'substring', text: t })),
  fc.constantFrom<TextMatcher>(
    { kind: 'regex', source: 'tapdisk\\[\\d+\\]', flags: '' },
    { kind: 'regex', source: 'blk(back|tap)', flags: 'i' },
  ),
);
const disk = fc.constantFrom('xvda', 'xvdb', '51712');
const guest = fc.constantFrom(...guests);

const action: fc.Arbitrary<GuestAction> = fc.oneof(
  fc.record({ kind: fc.constant('write' as const), disk, offset: sectors(1000), length: lengths, pattern }),
  fc.record(
    { kind: fc.constant('read' as const), disk, offset: sectors(1000), length: lengths, verify: pattern },
    { requiredKeys: ['kind', 'disk', 'offset', 'length'] },
  ),
  fc.record({ kind: fc.constant('discard' as const), disk, offset: sectors(1000), length: lengths }),
  fc.record({ kind: fc.constant('flush' as const), disk }),
  fc.record({ kind: fc.constantFrom('open' as const, 'close' as const), disk }),
  fc.record({ kind: fc.constant('shutdown' as const), timeout: ms }, { requiredKeys: ['kind'] }),
  fc.constant<GuestAction>({ kind: 'crash' }),
  fc
    .record({
      disk,
      rw: fc.constantFrom(...FIO_RW),
      bs: fc.constantFrom(512, 4 * KiB, 64 * KiB),
      iodepth: fc.integer({ min: 1, max: 1024 }),
      verify: fc.boolean(),
      limit: fc.oneof(
        fc.constant(undefined),
        fc.integer({ min: 1, max: 100_000 }),
        ms.filter((d) => d > 0).map((d) => ({ d })),
      ),
    })
    .map(({ limit, ...f }): GuestAction => {
      const fio: GuestAction = { kind: 'fio', ...f, size: MiB };
      if (typeof limit === 'number') fio.count = limit;
      else if (limit !== undefined) fio.duration = limit.d;
      return fio;
    }),
);

const wait: fc.Arbitrary<WaitCondition> = fc.oneof(
  fc.record({ kind: fc.constant('time' as const), time: ms }),
  fc
    .record({
      kind: fc.constant('xenstore' as const),
      path: xsPath,
      value: fc.option(text, { nil: undefined }),
      timeout: fc.option(ms, { nil: undefined }),
      absent: fc.boolean(),
    })
    .map((w): WaitCondition => {
      const out: WaitCondition = {
        kind: 'xenstore',
        path: w.path,
        absent: w.value === undefined && w.absent,
      };
      if (w.value !== undefined) out.value = w.value;
      if (w.timeout !== undefined) out.timeout = w.timeout;
      return out;
    }),
  fc.record(
    {
      kind: fc.constant('domain' as const),
      domain: guest,
      state: fc.constantFrom(...DOMAIN_STATES),
      timeout: ms,
    },
    { requiredKeys: ['kind', 'domain', 'state'] },
  ),
  fc.record(
    {
      kind: fc.constant('guest' as const),
      guest,
      device: fc.constantFrom('xvda', 'xvdb', 'xvdz'),
      present: fc.boolean(),
      timeout: ms,
    },
    { requiredKeys: ['kind', 'guest', 'device', 'present'] },
  ),
);

const fault: fc.Arbitrary<Fault> = fc.oneof(
  fc.record(
    {
      kind: fc.constant('kill-tapdisk' as const),
      signal: fc.constantFrom('SIGKILL', 'SIGTERM', 'SIGSEGV'),
      minor: fc.integer({ min: 0, max: 16383 }),
    },
    { requiredKeys: ['kind', 'signal'] },
  ),
  fc.record({ kind: fc.constant('stall-xenwatch' as const), for: ms.filter((d) => d > 0) }),
  fc.record({ kind: fc.constant('slow-image' as const), image: fc.constantFrom(...images), delay: ms }),
  fc.record({
    kind: fc.constant('fail-image' as const),
    image: fc.constantFrom(...images),
    error: fc.constantFrom('EIO', 'ENOSPC', 'EBUSY'),
    after: fc.nat(1000),
  }),
  fc.record(
    {
      kind: fc.constant('lose-event' as const),
      domain: fc.constantFrom('dom0', ...guests),
      port: fc.integer({ min: 1, max: 4095 }),
      count: fc.integer({ min: 1, max: 1000 }),
    },
    { requiredKeys: ['kind', 'domain', 'count'] },
  ),
  fc.record({ kind: fc.constant('crash-domain' as const), domain: guest }),
  fc.record({ kind: fc.constant('slow-hotplug' as const), delay: ms.filter((d) => d > 0) }),
);

// A guest kernel's xen_blkfront parameters: any subset of the keys, or none at all.
const blkfront: fc.Arbitrary<BlkfrontParams | undefined> = fc.option(
  fc.record(
    {
      featurePersistent: fc.boolean(),
      maxIndirectSegments: fc.integer({ min: 0, max: 4096 }),
      maxRingPageOrder: fc.integer({ min: 0, max: 4 }),
    },
    { requiredKeys: [] },
  ),
  { nil: undefined },
);

// Labels must be unique across a scenario; a counter keeps generated ones apart.
let labelCounter = 0;
const common = fc
  .record({
    label: fc.boolean(),
    reorderable: fc.boolean(),
    expectElapsed: fc.option(
      fc
        .record({ atLeast: ms, atMost: ms }, { requiredKeys: [] })
        .filter(
          (b) =>
            Object.keys(b).length > 0 &&
            (b.atLeast === undefined || b.atMost === undefined || b.atLeast <= b.atMost),
        ),
      { nil: undefined },
    ),
    failure: fc.constantFrom('none', 'may-fail', 'expect-error'),
  })
  .map(({ label, reorderable, expectElapsed, failure }) => {
    const out: Record<string, unknown> = { reorderable, mayFail: failure === 'may-fail' };
    if (label) out.label = `step-${labelCounter++}`;
    if (expectElapsed !== undefined) out.expectElapsed = expectElapsed;
    if (failure === 'expect-error') out.expectError = 'EBUSY';
    return out;
  });

const simpleStep: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.record({ kind: fc.constantFrom('xl', 'tap-ctl'), command: text.map((t) => t.trim()) }),
  fc.record({ kind: fc.constant('guest'), guest, action }),
  fc.record({ kind: fc.constant('xenstore-write'), path: xsPath, value: fc.string({ maxLength: 8 }) }),
  fc.record(
    { kind: fc.constant('xenstore-read'), path: xsPath, expect: fc.string({ maxLength: 8 }) },
    { requiredKeys: ['kind', 'path'] },
  ),
  fc.record({ kind: fc.constant('xenstore-rm'), path: xsPath }),
  fc.record({ kind: fc.constant('wait'), wait }),
  fc.record({ kind: fc.constant('fault'), fault }),
  fc.record({ kind: fc.constant('host'), action: fc.constant('shutdown') }),
);

const { step } = fc.letrec<{ step: Record<string, unknown> }>((tie) => ({
  step: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    simpleStep,
    fc.record({
      kind: fc.constant('repeat'),
      count: fc.integer({ min: 1, max: 1000 }),
      steps: fc.array(tie('step'), { minLength: 1, maxLength: 3 }),
    }),
    fc.record({
      kind: fc.constant('parallel'),
      steps: fc.array(tie('step'), { minLength: 1, maxLength: 3 }),
    }),
  ),
}));

const expectations: fc.Arbitrary<Expectations> = fc.record(
  {
    stall: fc.oneof(
      fc.constant({ kind: 'none' as const }),
      fc.record(
        {
          kind: fc.constant('chain' as const),
          chain: fc.array(matcher, { minLength: 1, maxLength: 4 }),
          brokenBy: matcher,
          count: fc.nat(5),
        },
        { requiredKeys: ['kind', 'chain'] },
      ),
    ),
    deadlock: fc.boolean(),
    tapCtlList: fc.array(
      fc.constantFrom('minor=0', 'pid=201 minor=1 state=0 args=aio:/srv/disk.img', 'true'),
    ),
    loopDevices: fc.array(fc.constantFrom('/dev/loop0: (/srv/disk.img)', '/^\\/dev\\/loop1: .*/')),
    xenstoreAbsent: fc.array(xsPath, { maxLength: 3 }),
    xenstore: fc.dictionary(xsPath, fc.string({ maxLength: 6 }), { maxKeys: 3 }),
    domains: fc.record(
      { running: fc.constant(['guest1']), dead: fc.constant(['guest2']), dying: fc.constant([]) },
      { requiredKeys: [] },
    ),
    data: fc.array(
      fc.record({
        image: fc.constantFrom(...images),
        offset: fc.nat(1 << 30),
        length: fc.integer({ min: 1, max: 1 << 20 }),
        pattern,
      }),
    ),
    log: fc.array(
      fc.oneof(
        fc.record({ domain: fc.constantFrom('dom0', ...guests), contains: matcher }),
        fc.record({ domain: fc.constantFrom('dom0', ...guests), notContains: matcher }),
      ),
    ),
    elapsed: fc.record({ atMost: ms }),
  },
  { requiredKeys: [] },
);

/** Fills in the keys every step has, recursively, giving the model's step shape without positions. */
function finishStep(raw: Record<string, unknown>, path: string, extra: Record<string, unknown>): Step {
  const out = { ...raw, ...extra, at: { path } } as Record<string, unknown>;
  if (Array.isArray(raw.steps)) {
    const inner = raw.kind === 'repeat' ? `${path}.steps` : `${path}.parallel`;
    out.steps = (raw.steps as Record<string, unknown>[]).map((s, i) =>
      finishStep(s, `${inner}[${i}]`, baseCommon()),
    );
  }
  return out as unknown as Step;
}

function baseCommon(): Record<string, unknown> {
  return { reorderable: false, mayFail: false };
}

// Every switch of the table, each over all of its values.
const versionsArb = fc.record(
  Object.fromEntries(VERSION_SWITCHES.map((sw) => [sw.field, fc.constantFrom(...sw.values)])),
) as unknown as fc.Arbitrary<Versions>;

const model: fc.Arbitrary<Scenario> = fc
  .record({
    name: fc.stringMatching(/^[a-z0-9-]{1,20}$/),
    description: text,
    cites: fc.option(text, { nil: undefined }),
    seed: fc.option(fc.integer({ min: 0, max: 0xffff_ffff }), { nil: undefined }),
    versions: versionsArb,
    hostMemory: fc.integer({ min: 256, max: 4096 }).map((pages) => pages * 4 * KiB),
    imageSizes: fc.tuple(lengths, lengths),
    fills: fc.tuple(pattern, pattern),
    formats: fc.tuple(
      fc.constantFrom('raw', 'vhd', 'qcow2' as const),
      fc.constantFrom('raw', 'vhd', 'qcow2' as const),
    ),
    abis: fc.tuple(
      fc.constantFrom('x86_64', 'x86_32' as const),
      fc.constantFrom('x86_64', 'x86_32' as const),
    ),
    blkfronts: fc.tuple(blkfront, blkfront),
    disks: fc.array(
      fc.constantFrom(
        'format=raw, vdev=xvda, access=rw, target=disk.img',
        'vdev=xvdb, target=data/b.vhd, format=vhd',
      ),
      { maxLength: 2 },
    ),
    steps: fc.array(fc.tuple(step, common), { minLength: 1, maxLength: 6 }),
    expect: expectations,
  })
  .map((r): Scenario => {
    const s: Scenario = {
      name: r.name,
      description: r.description,
      versions: r.versions,
      host: {
        memory: r.hostMemory,
        images: images.map((name, i) => ({
          name,
          size: r.imageSizes[i],
          format: r.formats[i],
          fill: r.fills[i],
        })),
      },
      domains: guests.map((name, i) => {
        const blk = r.blkfronts[i];
        return {
          name,
          memory: 16 * MiB,
          abi: r.abis[i],
          disks: r.disks,
          ...(blk === undefined ? {} : { blkfront: blk }),
        };
      }),
      steps: r.steps.map(([raw, extra], i) => finishStep(raw, `steps[${i}]`, extra)),
      expect: r.expect,
      source: { positions: {} },
    };
    if (r.cites !== undefined) s.cites = r.cites;
    if (r.seed !== undefined) s.seed = r.seed;
    return s;
  });

/** The model without file positions, for comparing a loaded scenario with a built one. */
function withoutPositions(s: Scenario): Scenario {
  const strip = (step: Step): Step => {
    const out = { ...step, at: { path: step.at.path } } as Step;
    if (out.kind === 'repeat' || out.kind === 'parallel') out.steps = out.steps.map(strip);
    return out;
  };
  return { ...s, steps: s.steps.map(strip), source: { positions: {} } };
}

describe('format and load', () => {
  it('a random valid model formatted to YAML loads back to an equal model', () => {
    fc.assert(
      fc.property(model, (s) => {
        const yaml = formatScenario(s);
        const loaded = parseScenario(yaml, 'round.yaml');
        expect(withoutPositions(loaded)).toEqual(s);
        // Every step keeps the position of its line in the formatted text.
        for (const step of loaded.steps) expect(step.at.line).toBeGreaterThan(0);
      }),
      { numRuns: 300 },
    );
  });

  it('the builder accepts the same plain shape the formatter writes', () => {
    fc.assert(
      fc.property(model, (s) => {
        const yaml = formatScenario(s);
        const loaded = parseScenario(yaml, 'round.yaml');
        expect(scenario(JSON.parse(JSON.stringify(toPlain(yaml))))).toEqual(withoutPositions(loaded));
      }),
      { numRuns: 100 },
    );
  });
});

function toPlain(yaml: string): never {
  return parse(yaml) as never;
}
