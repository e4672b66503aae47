/**
 * Checks a scenario tree against the language (model.ts) and builds the typed model. Every problem is
 * recorded; the caller throws a ScenarioError when there is any, so a partial model never escapes.
 */

import { PATTERN_EXAMPLE, type Pattern, parsePattern } from '../guest/pattern.js';
import { ERRNO } from '../kernel/errno.js';
import { SIGNALS } from '../kernel/signals.js';
import { Checker } from './check.js';
import type { IssueList } from './errors.js';
import {
  BLKFRONT_PARAM_KEYS,
  type BlkfrontParams,
  type DataExpectation,
  DEFAULT_VERSIONS,
  DOM0_NAME,
  DOMAIN_ABIS,
  DOMAIN_ACTIONS,
  DOMAIN_STATES,
  type DomainDecl,
  type DomainState,
  type Expectations,
  FAULT_KINDS,
  type Fault,
  FIO_RW,
  GUEST_ACTIONS,
  type GuestAction,
  HOST_ACTIONS,
  type HostSpec,
  IMAGE_FORMATS,
  type ImageSpec,
  type LogExpectation,
  REPEAT_MAX,
  REPEAT_MIN,
  RESERVED_DOMAIN_NAMES,
  type Scenario,
  STEP_KINDS,
  type StallExpectation,
  type Step,
  type StepCommon,
  type StepOrigin,
  type TextMatcher,
  type TimeBounds,
  VERSION_SWITCHES,
  type VersionField,
  type Versions,
  type WaitCondition,
} from './model.js';
import { fixHint } from './suggest.js';
import { describeNode, indexPath, keyPath, type SEntry, type SMap, type SNode } from './tree.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;
const SECTOR = 512;
const PAGE = 4 * KiB;

const TOP_KEYS = ['name', 'description', 'cites', 'seed', 'versions', 'host', 'domains', 'steps', 'expect'];
const VERSION_KEYS = VERSION_SWITCHES.map((s) => s.key);
const COMMON_STEP_KEYS = ['label', 'reorderable', 'expect-elapsed', 'expect-error', 'may-fail'];
const EXPECT_KEYS = [
  'stall',
  'deadlock',
  'tap-ctl-list',
  'xenstore-absent',
  'xenstore',
  'domains',
  'data',
  'log',
  'elapsed',
  'oops',
  'loop-devices',
];

const NAME_RE = /^[a-z0-9-]+$/;
const DOMAIN_NAME_RE = /^[A-Za-z0-9_.-]+$/;
const IMAGE_NAME_RE = /^(?!\.{1,2}(?:\/|$))(?!.*\/\.{1,2}(?:\/|$))[A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.-]+)*$/;
const DISK_RE = /^[A-Za-z0-9]+$/;
const XVD_DISK_RE = /^xvd[a-z]+$/;
// xenstored's path rule: segments of [A-Za-z0-9_@-], absolute here; XENSTORE_ABS_PATH_MAX is 3072.
const XENSTORE_PATH_RE = /^\/(?:[A-Za-z0-9_@-]+(?:\/[A-Za-z0-9_@-]+)*)?$/;
const XENSTORE_PATH_MAX = 3072;
const REGEX_MATCHER_RE = /^\/(.+)\/([imsu]*)$/s;

/** What the validator needs from outside the tree. */
export interface ValidateContext {
  file?: string;
}

export function validateScenario(root: SNode | undefined, issues: IssueList, ctx: ValidateContext): Scenario {
  return new ScenarioValidator(issues, ctx).scenario(root);
}

/** A step without the keys every step shares. */
type StepBody = Step extends infer S ? (S extends Step ? Omit<S, keyof StepCommon> : never) : never;

type Refs = { path: string; node: SNode; name: string };

class ScenarioValidator {
  private readonly c: Checker;
  private readonly domainNames: string[] = [];
  private readonly imageNames: string[] = [];
  private readonly labels = new Map<string, string>();
  // References are checked once every declaration has been read.
  private readonly guestRefs: Refs[] = [];
  private readonly anyDomainRefs: Refs[] = [];
  private readonly imageRefs: Refs[] = [];

  constructor(
    readonly issues: IssueList,
    readonly ctx: ValidateContext,
  ) {
    this.c = new Checker(issues);
  }

  scenario(root: SNode | undefined): Scenario {
    const c = this.c;
    const out = {
      versions: { ...DEFAULT_VERSIONS },
      host: { memory: 64 * MiB, images: [] },
      domains: [],
      steps: [],
      expect: {},
      source: { file: this.ctx.file, positions: {} },
    } as unknown as Scenario;
    if (this.ctx.file === undefined) delete out.source.file;
    if (root === undefined || (root.kind === 'scalar' && root.value === null)) {
      c.fail('', { line: 1, column: 1 }, 'the scenario is empty; start with name:, description: and steps:');
      return out;
    }
    const map = c.map(root, '', '{ name: my-scenario, description: ..., steps: [...] }');
    if (map === undefined) return out;
    const f = c.fields(map, '', TOP_KEYS, ['name', 'description', 'steps'], {
      name: 'name: blktap2-teardown-deadlock',
      description: 'description: what the scenario shows',
      steps: 'steps: [{ xl: create guest1 }]',
    });
    const get = (key: string) => f.get(key)?.value;
    let node = get('name');
    if (node) {
      const name = c.word(
        node,
        'name',
        NAME_RE,
        'use lower-case letters, digits and -',
        'blktap2-teardown-deadlock',
      );
      if (name !== undefined) out.name = name;
    }
    if ((node = get('description'))) {
      const description = c.string(node, 'description', '"what the scenario shows"');
      if (description !== undefined) out.description = description;
    }
    if ((node = get('cites'))) {
      const cites = c.string(node, 'cites', '"teardown.md §3"');
      if (cites !== undefined) out.cites = cites;
    }
    if ((node = get('seed'))) {
      const seed = c.int(node, 'seed', 0, 0xffff_ffff);
      if (seed !== undefined) out.seed = seed;
    }
    if ((node = get('versions'))) out.versions = this.versions(node);
    if ((node = get('host'))) out.host = this.host(node);
    if ((node = get('domains'))) out.domains = this.domains(node);
    if ((node = get('steps'))) {
      const steps = this.steps(node, 'steps');
      if (steps !== undefined) out.steps = steps;
    }
    if ((node = get('expect'))) out.expect = this.expect(node);
    this.checkRefs();
    return out;
  }

  // ------------------------------------------------------------------------------------------ versions

  private versions(node: SNode): Versions {
    const c = this.c;
    const versions: Versions = { ...DEFAULT_VERSIONS };
    const map = c.map(node, 'versions', '{ libxl: "4.1", blkback: "2012" }');
    if (map === undefined) return versions;
    const f = c.fields(map, 'versions', VERSION_KEYS, [], {}, 'component');
    // Each switch is written back under its field; the table types the value, so one cast suffices.
    const set = versions as Record<VersionField, string | boolean>;
    for (const sw of VERSION_SWITCHES) {
      const entry = f.get(sw.key);
      if (entry === undefined) continue;
      const path = keyPath('versions', sw.key);
      const value =
        typeof sw.default === 'boolean'
          ? c.bool(entry.value, path)
          : c.oneOf(entry.value, path, sw.values as readonly string[], sw.what);
      if (value !== undefined) set[sw.field] = value;
    }
    return versions;
  }

  // ---------------------------------------------------------------------------------------------- host

  private host(node: SNode): HostSpec {
    const c = this.c;
    const host: HostSpec = { memory: 64 * MiB, images: [] };
    const map = c.map(node, 'host', '{ memory: 64MiB, images: [...] }');
    if (map === undefined) return host;
    const f = c.fields(map, 'host', ['memory', 'images']);
    const memory = f.get('memory');
    if (memory) {
      host.memory =
        c.size(memory.value, 'host.memory', {
          min: MiB,
          max: 16 * GiB,
          align: PAGE,
          alignWhy: 'whole pages',
        }) ?? host.memory;
    }
    const images = f.get('images');
    if (images) {
      host.images =
        c.each(images.value, 'host.images', '[{ name: disk.img, size: 16MiB }]', (item, path) =>
          this.image(item, path),
        ) ?? [];
    }
    return host;
  }

  private image(node: SNode, path: string): ImageSpec | undefined {
    const c = this.c;
    const map = c.map(node, path, '{ name: disk.img, size: 16MiB }');
    if (map === undefined) return undefined;
    const f = c.fields(map, path, ['name', 'size', 'format', 'fill'], ['name', 'size'], {
      name: 'name: disk.img',
      size: 'size: 16MiB',
    });
    const image: Partial<ImageSpec> = { format: 'raw', fill: { kind: 'zero' } };
    let entry: SEntry | undefined;
    if ((entry = f.get('name'))) {
      const name = c.word(
        entry.value,
        keyPath(path, 'name'),
        IMAGE_NAME_RE,
        'a file name relative to the work dir (letters, digits, _ . -, no ..)',
        'disk.img',
      );
      if (name !== undefined) {
        if (this.imageNames.includes(name)) {
          c.fail(keyPath(path, 'name'), entry.value, `duplicate image "${name}"; image names are unique`);
        } else this.imageNames.push(name);
        image.name = name;
      }
    }
    if ((entry = f.get('size'))) {
      image.size = c.size(entry.value, keyPath(path, 'size'), {
        min: SECTOR,
        max: 2 * TiB,
        align: SECTOR,
        alignWhy: 'whole 512-byte sectors',
      });
    }
    if ((entry = f.get('format'))) {
      image.format = c.oneOf(entry.value, keyPath(path, 'format'), IMAGE_FORMATS, 'image format');
    }
    if ((entry = f.get('fill'))) image.fill = this.pattern(entry.value, keyPath(path, 'fill'));
    return image as ImageSpec;
  }

  // ------------------------------------------------------------------------------------------- domains

  private domains(node: SNode): DomainDecl[] {
    const c = this.c;
    return (
      c.each(node, 'domains', '[{ name: guest1, memory: 16MiB }]', (item, path) => {
        const map = c.map(item, path, '{ name: guest1, memory: 16MiB, disks: [...] }');
        if (map === undefined) return undefined;
        const f = c.fields(
          map,
          path,
          ['name', 'memory', 'abi', 'disks', 'on-poweroff', 'on-crash', 'blkfront'],
          ['name'],
          {
            name: 'name: guest1',
          },
        );
        const domain: Partial<DomainDecl> = { memory: 16 * MiB, abi: 'x86_64', disks: [] };
        let entry: SEntry | undefined;
        if ((entry = f.get('name'))) {
          const namePath = keyPath(path, 'name');
          const name = c.word(
            entry.value,
            namePath,
            DOMAIN_NAME_RE,
            'use letters, digits, _ . and -',
            'guest1',
          );
          if (name !== undefined) {
            if ((RESERVED_DOMAIN_NAMES as readonly string[]).includes(name)) {
              c.fail(
                namePath,
                entry.value,
                `"${name}" is dom0, which always exists; name guests otherwise, e.g. guest1`,
              );
            } else if (this.domainNames.includes(name)) {
              c.fail(namePath, entry.value, `duplicate domain "${name}"; domain names are unique`);
            } else this.domainNames.push(name);
            domain.name = name;
          }
        }
        if ((entry = f.get('memory'))) {
          domain.memory = c.size(entry.value, keyPath(path, 'memory'), {
            min: MiB,
            max: 16 * GiB,
            align: PAGE,
            alignWhy: 'whole pages',
          });
        }
        if ((entry = f.get('abi')))
          domain.abi = c.oneOf(entry.value, keyPath(path, 'abi'), DOMAIN_ABIS, 'guest ABI');
        if ((entry = f.get('on-poweroff')))
          domain.onPoweroff = c.oneOf(
            entry.value,
            keyPath(path, 'on-poweroff'),
            DOMAIN_ACTIONS,
            'domain action',
          );
        if ((entry = f.get('on-crash')))
          domain.onCrash = c.oneOf(entry.value, keyPath(path, 'on-crash'), DOMAIN_ACTIONS, 'domain action');
        if ((entry = f.get('blkfront'))) {
          const params = this.blkfrontParams(entry.value, keyPath(path, 'blkfront'));
          if (params !== undefined) domain.blkfront = params;
        }
        if ((entry = f.get('disks'))) {
          domain.disks = c.each(
            entry.value,
            keyPath(path, 'disks'),
            '["format=raw, vdev=xvda, access=rw, target=disk.img"]',
            (disk, diskPath) =>
              c.string(disk, diskPath, '"format=raw, vdev=xvda, access=rw, target=disk.img"'),
          );
        }
        return domain as DomainDecl;
      }) ?? []
    );
  }

  /** xen_blkfront module parameters; limits as blkfront's own checks (drivers/blkfront/xenbus.ts). */
  private blkfrontParams(node: SNode, path: string): BlkfrontParams | undefined {
    const c = this.c;
    const map = c.map(node, path, '{ feature-persistent: false }');
    if (map === undefined) return undefined;
    const f = c.fields(map, path, Object.keys(BLKFRONT_PARAM_KEYS), [], {}, 'blkfront parameter');
    const params: BlkfrontParams = {};
    let entry: SEntry | undefined;
    if ((entry = f.get('feature-persistent'))) {
      const v = c.bool(entry.value, keyPath(path, 'feature-persistent'));
      if (v !== undefined) params.featurePersistent = v;
    }
    if ((entry = f.get('max-indirect-segments'))) {
      const v = c.int(entry.value, keyPath(path, 'max-indirect-segments'), 0, 4096);
      if (v !== undefined) params.maxIndirectSegments = v;
    }
    if ((entry = f.get('max-ring-page-order'))) {
      // XENBUS_MAX_RING_GRANT_ORDER
      const v = c.int(entry.value, keyPath(path, 'max-ring-page-order'), 0, 4);
      if (v !== undefined) params.maxRingPageOrder = v;
    }
    return params;
  }

  // --------------------------------------------------------------------------------------------- steps

  private steps(node: SNode, path: string): Step[] | undefined {
    const items = this.c.list(node, path, '[{ xl: create guest1 }, { xl: destroy guest1 }]');
    if (items === undefined) return undefined;
    if (items.length === 0)
      return this.c.fail(path, node, 'needs at least one step, e.g. - xl: create guest1');
    const steps: Step[] = [];
    items.forEach((item, index) => {
      const step = this.step(item, indexPath(path, index));
      if (step !== undefined) steps.push(step);
    });
    return steps;
  }

  private step(node: SNode, path: string): Step | undefined {
    const c = this.c;
    if (node.kind !== 'map') {
      return c.fail(
        path,
        node,
        `a step is a map with one kind, like xl: create guest1; got ${describeNode(node)}`,
      );
    }
    const kinds = node.entries.filter((e) => (STEP_KINDS as readonly string[]).includes(e.key));
    if (kinds.length === 0) {
      const unknown = node.entries.filter((e) => !COMMON_STEP_KEYS.includes(e.key));
      if (unknown.length > 0) {
        for (const e of unknown) {
          c.fail(keyPath(path, e.key), e.keyPos, `unknown step kind "${e.key}"${fixHint(e.key, STEP_KINDS)}`);
        }
      } else c.fail(path, node, `the step has no kind; add one of ${STEP_KINDS.join(', ')}`);
      return undefined;
    }
    if (kinds.length > 1) {
      return c.fail(
        path,
        kinds[1].keyPos,
        `a step has one kind, found ${kinds.map((k) => k.key).join(' and ')}; split it into separate steps`,
      );
    }
    const kind = kinds[0].key as Step['kind'];
    const value = kinds[0].value;
    const kindPath = keyPath(path, kind);
    const own: Record<Step['kind'], readonly string[]> = {
      xl: ['xl'],
      'tap-ctl': ['tap-ctl'],
      guest: ['guest', ...GUEST_ACTIONS],
      'xenstore-write': ['xenstore-write'],
      'xenstore-read': ['xenstore-read'],
      'xenstore-rm': ['xenstore-rm'],
      wait: ['wait'],
      fault: ['fault'],
      repeat: ['repeat', 'steps'],
      parallel: ['parallel'],
      host: ['host'],
    };
    const f = c.fields(node, path, [...own[kind], ...COMMON_STEP_KEYS], kind === 'repeat' ? ['steps'] : [], {
      steps: 'steps: [{ xl: create guest1 }]',
    });
    const common = this.commonStepFields(node, f, path);
    const done = (step: StepBody | undefined): Step | undefined =>
      step === undefined || common === undefined ? undefined : ({ ...common, ...step } as Step);

    switch (kind) {
      case 'xl':
      case 'tap-ctl': {
        const command = c.string(value, kindPath, kind === 'xl' ? '"create guest1"' : '"list"');
        return done(command === undefined ? undefined : { kind, command: command.trim() });
      }
      case 'guest': {
        const guest = this.guestRef(value, kindPath);
        const actions = node.entries.filter((e) => (GUEST_ACTIONS as readonly string[]).includes(e.key));
        if (actions.length === 0) {
          return c.fail(path, node, `the guest step needs an action: one of ${GUEST_ACTIONS.join(', ')}`);
        }
        if (actions.length > 1) {
          return c.fail(
            path,
            actions[1].keyPos,
            `a guest step takes exactly one action, found ${actions.map((a) => a.key).join(' and ')}; split them into separate steps`,
          );
        }
        const action = this.guestAction(actions[0], keyPath(path, actions[0].key));
        return done(guest === undefined || action === undefined ? undefined : { kind, guest, action });
      }
      case 'xenstore-write': {
        const map = c.map(value, kindPath, '{ path: /local/domain/0/key, value: "1" }');
        if (map === undefined) return undefined;
        const g = c.fields(map, kindPath, ['path', 'value'], ['path', 'value'], {
          path: 'path: /local/domain/0/key',
          value: 'value: "1"',
        });
        const p = g.get('path') && this.xenstorePath(g.get('path')!.value, keyPath(kindPath, 'path'));
        const v = g.get('value') && c.text(g.get('value')!.value, keyPath(kindPath, 'value'), '"1"');
        return done(p === undefined || v === undefined ? undefined : { kind, path: p, value: v });
      }
      case 'xenstore-read': {
        const map = c.map(value, kindPath, '{ path: /local/domain/0/key, expect: "1" }');
        if (map === undefined) return undefined;
        const g = c.fields(map, kindPath, ['path', 'expect'], ['path'], {
          path: 'path: /local/domain/0/key',
        });
        const p = g.get('path') && this.xenstorePath(g.get('path')!.value, keyPath(kindPath, 'path'));
        const e = g.get('expect');
        const expect = e && c.text(e.value, keyPath(kindPath, 'expect'), '"4"');
        if (p === undefined || (e && expect === undefined)) return undefined;
        return done(expect === undefined ? { kind, path: p } : { kind, path: p, expect });
      }
      case 'xenstore-rm': {
        const map = c.map(value, kindPath, '{ path: /local/domain/0/key }');
        if (map === undefined) return undefined;
        const g = c.fields(map, kindPath, ['path'], ['path'], { path: 'path: /local/domain/0/key' });
        const p = g.get('path') && this.xenstorePath(g.get('path')!.value, keyPath(kindPath, 'path'));
        return done(p === undefined ? undefined : { kind, path: p });
      }
      case 'wait': {
        const wait = this.wait(value, kindPath);
        return done(wait === undefined ? undefined : { kind, wait });
      }
      case 'fault': {
        const fault = this.fault(value, kindPath);
        return done(fault === undefined ? undefined : { kind, fault });
      }
      case 'repeat': {
        const count = c.int(value, kindPath, REPEAT_MIN, REPEAT_MAX);
        const body = f.get('steps');
        const steps = body && this.steps(body.value, keyPath(path, 'steps'));
        return done(count === undefined || steps === undefined ? undefined : { kind, count, steps });
      }
      case 'parallel': {
        const steps = this.steps(value, kindPath);
        return done(steps === undefined ? undefined : { kind, steps });
      }
      case 'host': {
        const action = c.oneOf(value, kindPath, HOST_ACTIONS, 'host action');
        return done(action === undefined ? undefined : { kind, action });
      }
    }
  }

  private commonStepFields(node: SMap, f: Map<string, SEntry>, path: string): StepCommon | undefined {
    const c = this.c;
    const at: StepOrigin = { path };
    if (this.ctx.file !== undefined) at.file = this.ctx.file;
    if (node.pos !== undefined) {
      at.line = node.pos.line;
      at.column = node.pos.column;
    }
    const common: StepCommon = { at, reorderable: false, mayFail: false };
    let ok = true;
    let entry: SEntry | undefined;
    if ((entry = f.get('label'))) {
      const labelPath = keyPath(path, 'label');
      const label = c.string(entry.value, labelPath, '"destroy"');
      if (label === undefined) ok = false;
      else {
        const first = this.labels.get(label);
        if (first !== undefined) {
          c.fail(labelPath, entry.value, `duplicate label "${label}" (also on ${first}); labels are unique`);
          ok = false;
        } else this.labels.set(label, path);
        common.label = label;
      }
    }
    if ((entry = f.get('reorderable'))) {
      const v = c.bool(entry.value, keyPath(path, 'reorderable'));
      if (v === undefined) ok = false;
      else common.reorderable = v;
    }
    if ((entry = f.get('may-fail'))) {
      const v = c.bool(entry.value, keyPath(path, 'may-fail'));
      if (v === undefined) ok = false;
      else common.mayFail = v;
    }
    if ((entry = f.get('expect-error'))) {
      const v = c.string(entry.value, keyPath(path, 'expect-error'), '"EBUSY"');
      if (v === undefined) ok = false;
      else common.expectError = v;
      if (common.mayFail) {
        c.fail(
          keyPath(path, 'may-fail'),
          f.get('may-fail')?.value,
          'expect-error already means the step must fail; drop may-fail',
        );
        ok = false;
      }
    }
    if ((entry = f.get('expect-elapsed'))) {
      const bounds = this.bounds(entry.value, keyPath(path, 'expect-elapsed'));
      if (bounds === undefined) ok = false;
      else common.expectElapsed = bounds;
    }
    return ok ? common : undefined;
  }

  private guestAction(entry: SEntry, path: string): GuestAction | undefined {
    const c = this.c;
    const node = entry.value;
    const kind = entry.key as GuestAction['kind'];
    const diskExample = '{ disk: xvda }';
    const ioExample = '{ disk: xvda, offset: 0, length: 64KiB }';
    const sectors = { min: 0, max: 2 * TiB, align: SECTOR, alignWhy: 'whole 512-byte sectors' };
    const length = { ...sectors, min: SECTOR };
    const req = (g: Map<string, SEntry>, key: string) => g.get(key)?.value;
    switch (kind) {
      case 'open':
      case 'close': {
        const disk = this.disk(node, path);
        return disk === undefined ? undefined : { kind, disk };
      }
      case 'shutdown': {
        const map = c.optionalMap(node, path, '{} or { timeout: 5s }');
        if (map === undefined) return undefined;
        const g = c.fields(map, path, ['timeout']);
        const t = req(g, 'timeout');
        if (t === undefined) return { kind };
        const timeout = c.duration(t, keyPath(path, 'timeout'));
        return timeout === undefined ? undefined : { kind, timeout };
      }
      case 'crash': {
        const map = c.optionalMap(node, path, '{}');
        if (map === undefined) return undefined;
        c.fields(map, path, []);
        return map.entries.length === 0 ? { kind } : undefined;
      }
      case 'flush': {
        const map = c.map(node, path, diskExample);
        if (map === undefined) return undefined;
        const g = c.fields(map, path, ['disk'], ['disk'], { disk: 'disk: xvda' });
        const disk = req(g, 'disk') && this.disk(req(g, 'disk')!, keyPath(path, 'disk'));
        return disk === undefined ? undefined : { kind, disk };
      }
      case 'write':
      case 'read':
      case 'discard': {
        const extra = kind === 'write' ? ['pattern'] : kind === 'read' ? ['verify'] : [];
        const map = c.map(
          node,
          path,
          kind === 'write' ? `{ disk: xvda, offset: 0, length: 64KiB, pattern: seq }` : ioExample,
        );
        if (map === undefined) return undefined;
        const required = ['disk', 'offset', 'length', ...(kind === 'write' ? ['pattern'] : [])];
        const g = c.fields(map, path, ['disk', 'offset', 'length', ...extra], required, {
          disk: 'disk: xvda',
          offset: 'offset: 0',
          length: 'length: 64KiB',
          pattern: 'pattern: seq',
        });
        let ok = required.every((k) => g.has(k));
        const disk = req(g, 'disk') && this.disk(req(g, 'disk')!, keyPath(path, 'disk'));
        const offset = req(g, 'offset') && c.size(req(g, 'offset')!, keyPath(path, 'offset'), sectors);
        const len = req(g, 'length') && c.size(req(g, 'length')!, keyPath(path, 'length'), length);
        ok &&= disk !== undefined && offset !== undefined && len !== undefined;
        if (kind === 'write') {
          const pattern = req(g, 'pattern') && this.pattern(req(g, 'pattern')!, keyPath(path, 'pattern'));
          return ok && pattern ? { kind, disk: disk!, offset: offset!, length: len!, pattern } : undefined;
        }
        if (kind === 'read') {
          const v = req(g, 'verify');
          const verify = v && this.pattern(v, keyPath(path, 'verify'));
          if (!ok || (v && verify === undefined)) return undefined;
          const read: GuestAction = { kind, disk: disk!, offset: offset!, length: len! };
          if (verify !== undefined) read.verify = verify;
          return read;
        }
        return ok ? { kind, disk: disk!, offset: offset!, length: len! } : undefined;
      }
      case 'fio': {
        const map = c.map(node, path, '{ disk: xvda, rw: randread, bs: 4KiB, size: 1MiB }');
        if (map === undefined) return undefined;
        const g = c.fields(
          map,
          path,
          ['disk', 'rw', 'bs', 'iodepth', 'size', 'count', 'duration', 'verify'],
          ['disk', 'rw', 'bs', 'size'],
          { disk: 'disk: xvda', rw: 'rw: randread', bs: 'bs: 4KiB', size: 'size: 1MiB' },
        );
        let ok = ['disk', 'rw', 'bs', 'size'].every((k) => g.has(k));
        const disk = req(g, 'disk') && this.disk(req(g, 'disk')!, keyPath(path, 'disk'));
        const rw = req(g, 'rw') && c.oneOf(req(g, 'rw')!, keyPath(path, 'rw'), FIO_RW, 'fio rw mode');
        const bs = req(g, 'bs') && c.size(req(g, 'bs')!, keyPath(path, 'bs'), { ...length, max: 4 * MiB });
        const size = req(g, 'size') && c.size(req(g, 'size')!, keyPath(path, 'size'), length);
        ok &&= disk !== undefined && rw !== undefined && bs !== undefined && size !== undefined;
        if (bs !== undefined && size !== undefined && bs > size) {
          c.fail(
            keyPath(path, 'bs'),
            req(g, 'bs'),
            `block size is larger than size (${size} bytes); lower bs or raise size`,
          );
          ok = false;
        }
        let iodepth = 1;
        if (req(g, 'iodepth')) {
          const d = c.int(req(g, 'iodepth')!, keyPath(path, 'iodepth'), 1, 1024);
          if (d === undefined) ok = false;
          else iodepth = d;
        }
        let verify = false;
        if (req(g, 'verify')) {
          const v = c.bool(req(g, 'verify')!, keyPath(path, 'verify'));
          if (v === undefined) ok = false;
          else verify = v;
        }
        const countNode = req(g, 'count');
        const durationNode = req(g, 'duration');
        if (countNode && durationNode) {
          c.fail(keyPath(path, 'duration'), durationNode, 'give either count or duration, not both');
          ok = false;
        }
        const count = countNode && c.int(countNode, keyPath(path, 'count'), 1, 10_000_000);
        const duration = durationNode && c.duration(durationNode, keyPath(path, 'duration'), { min: 0.001 });
        if ((countNode && count === undefined) || (durationNode && duration === undefined) || !ok)
          return undefined;
        const fio: GuestAction = { kind, disk: disk!, rw: rw!, bs: bs!, iodepth, size: size!, verify };
        if (count !== undefined) fio.count = count;
        if (duration !== undefined) fio.duration = duration;
        return fio;
      }
    }
  }

  private disk(node: SNode, path: string): string | undefined {
    return this.c.word(node, path, DISK_RE, 'a disk is its vdev name from the disk spec', 'xvda');
  }

  // ----------------------------------------------------------------------------------- waits and faults

  private wait(node: SNode, path: string): WaitCondition | undefined {
    const c = this.c;
    const map = c.map(node, path, '{ time: 2s }');
    if (map === undefined) return undefined;
    const kinds = map.entries.filter((e) => ['time', 'xenstore', 'domain', 'guest'].includes(e.key));
    const allowedFor: Record<string, string[]> = {
      time: ['time'],
      xenstore: ['xenstore', 'value', 'absent', 'timeout'],
      domain: ['domain', 'state', 'timeout'],
      guest: ['guest', 'device', 'no-device', 'timeout'],
    };
    if (kinds.length !== 1) {
      if (kinds.length === 0) {
        c.fields(map, path, [
          'time',
          'xenstore',
          'domain',
          'guest',
          'value',
          'absent',
          'state',
          'device',
          'no-device',
          'timeout',
        ]);
        return c.fail(path, map, 'a wait needs one of time, xenstore, domain or guest, e.g. { time: 2s }');
      }
      return c.fail(
        path,
        kinds[1].keyPos,
        `a wait waits for one thing, found ${kinds.map((k) => k.key).join(' and ')}; use separate wait steps`,
      );
    }
    const kind = kinds[0].key as WaitCondition['kind'];
    const required = kind === 'domain' ? ['state'] : [];
    const g = c.fields(map, path, allowedFor[kind], required, { state: 'state: dead' });
    const timeoutNode = g.get('timeout')?.value;
    const timeout = timeoutNode && c.duration(timeoutNode, keyPath(path, 'timeout'));
    if (timeoutNode && timeout === undefined) return undefined;
    switch (kind) {
      case 'time': {
        const time = c.duration(kinds[0].value, keyPath(path, 'time'));
        return time === undefined ? undefined : { kind, time };
      }
      case 'xenstore': {
        const p = this.xenstorePath(kinds[0].value, keyPath(path, 'xenstore'));
        const valueNode = g.get('value')?.value;
        const absentNode = g.get('absent')?.value;
        const value = valueNode && c.text(valueNode, keyPath(path, 'value'), '"6"');
        const absent = absentNode ? c.bool(absentNode, keyPath(path, 'absent')) : false;
        if (valueNode && absent) {
          c.fail(
            keyPath(path, 'absent'),
            absentNode,
            'a node cannot both have a value and be absent; drop one',
          );
          return undefined;
        }
        if (p === undefined || (valueNode && value === undefined) || absent === undefined) return undefined;
        const wait: WaitCondition = { kind, path: p, absent };
        if (value !== undefined) wait.value = value;
        if (timeout !== undefined) wait.timeout = timeout;
        return wait;
      }
      case 'domain': {
        const domain = this.guestRef(kinds[0].value, keyPath(path, 'domain'));
        const stateNode = g.get('state')?.value;
        const state = stateNode && c.oneOf(stateNode, keyPath(path, 'state'), DOMAIN_STATES, 'domain state');
        if (domain === undefined || state === undefined) return undefined;
        const wait: WaitCondition = { kind, domain, state };
        if (timeout !== undefined) wait.timeout = timeout;
        return wait;
      }
      case 'guest': {
        const guest = this.guestRef(kinds[0].value, keyPath(path, 'guest'));
        const which = (['device', 'no-device'] as const).filter((k) => g.has(k));
        // A misspelt key was reported already (with its suggestion): that one error says it.
        if (which.length === 0 && map.entries.some((e) => !allowedFor.guest.includes(e.key)))
          return undefined;
        if (which.length !== 1) {
          return c.fail(
            path,
            which.length === 0 ? map : g.get(which[1])!.keyPos,
            which.length === 0
              ? 'a guest wait needs device (to appear) or no-device (to be gone), e.g. no-device: xvda'
              : 'a guest wait waits for one of device and no-device; use separate wait steps',
          );
        }
        const key = which[0];
        // blkfront names its disks in the xvd scheme only (drivers/blkfront/vdevice.ts).
        const device = c.word(
          g.get(key)!.value,
          keyPath(path, key),
          XVD_DISK_RE,
          "a guest's disk is named xvd and letters (blkfront's naming)",
          'xvda',
        );
        if (guest === undefined || device === undefined) return undefined;
        const wait: WaitCondition = { kind, guest, device, present: key === 'device' };
        if (timeout !== undefined) wait.timeout = timeout;
        return wait;
      }
    }
  }

  private fault(node: SNode, path: string): Fault | undefined {
    const c = this.c;
    const map = c.map(node, path, '{ kill-tapdisk: { signal: KILL } }');
    if (map === undefined) return undefined;
    if (map.entries.length !== 1) {
      if (map.entries.length === 0) return c.fail(path, map, `name one fault: ${FAULT_KINDS.join(', ')}`);
      c.fields(map, path, FAULT_KINDS, [], {}, 'fault');
      const known = map.entries.filter((e) => (FAULT_KINDS as readonly string[]).includes(e.key));
      if (known.length > 1) {
        c.fail(path, known[1].keyPos, `one fault per step, found ${known.map((k) => k.key).join(' and ')}`);
      }
      return undefined;
    }
    const entry = map.entries[0];
    if (!(FAULT_KINDS as readonly string[]).includes(entry.key)) {
      c.fields(map, path, FAULT_KINDS, [], {}, 'fault');
      return undefined;
    }
    const kind = entry.key as Fault['kind'];
    const at = keyPath(path, kind);
    const params = (allowed: string[], required: string[], examples: Record<string, string>) => {
      const m = c.optionalMap(entry.value, at, `{ ${Object.values(examples).join(', ')} }`);
      return m && { map: m, f: c.fields(m, at, allowed, required, examples) };
    };
    switch (kind) {
      case 'kill-tapdisk': {
        const p = params(['signal', 'minor'], [], { signal: 'signal: KILL' });
        if (p === undefined) return undefined;
        const s = p.f.get('signal')?.value;
        const m = p.f.get('minor')?.value;
        const signal = s ? this.signal(s, keyPath(at, 'signal')) : 'SIGKILL';
        const minor = m && c.int(m, keyPath(at, 'minor'), 0, 16383);
        if (signal === undefined || (m && minor === undefined)) return undefined;
        const fault: Fault = { kind, signal };
        if (minor !== undefined) fault.minor = minor;
        return fault;
      }
      case 'stall-xenwatch': {
        const p = params(['for'], ['for'], { for: 'for: 7s' });
        const f = p?.f.get('for')?.value;
        const ms = f && c.duration(f, keyPath(at, 'for'), { min: 0.001 });
        return ms === undefined ? undefined : { kind, for: ms };
      }
      case 'slow-image': {
        const p = params(['image', 'delay'], ['image', 'delay'], {
          image: 'image: disk.img',
          delay: 'delay: 10ms',
        });
        const i = p?.f.get('image')?.value;
        const d = p?.f.get('delay')?.value;
        const image = i && this.imageRef(i, keyPath(at, 'image'));
        const delay = d && c.duration(d, keyPath(at, 'delay'));
        return image === undefined || delay === undefined ? undefined : { kind, image, delay };
      }
      case 'fail-image': {
        const p = params(['image', 'error', 'after'], ['image'], {
          image: 'image: disk.img',
          error: 'error: EIO',
        });
        if (p === undefined) return undefined;
        const i = p.f.get('image')?.value;
        const e = p.f.get('error')?.value;
        const a = p.f.get('after')?.value;
        const image = i && this.imageRef(i, keyPath(at, 'image'));
        const error = e ? this.errno(e, keyPath(at, 'error')) : 'EIO';
        const after = a ? c.int(a, keyPath(at, 'after'), 0, 1_000_000_000) : 0;
        return image === undefined || error === undefined || after === undefined
          ? undefined
          : { kind, image, error, after };
      }
      case 'lose-event': {
        const p = params(['domain', 'port', 'count'], ['domain'], {
          domain: 'domain: guest1',
          count: 'count: 1',
        });
        if (p === undefined) return undefined;
        const d = p.f.get('domain')?.value;
        const po = p.f.get('port')?.value;
        const n = p.f.get('count')?.value;
        const domain = d && this.anyDomainRef(d, keyPath(at, 'domain'));
        // 2-level event channel ABI: 4096 ports on x86_64, port 0 is never valid.
        const port = po && c.int(po, keyPath(at, 'port'), 1, 4095);
        const count = n ? c.int(n, keyPath(at, 'count'), 1, 1000) : 1;
        if (domain === undefined || (po && port === undefined) || count === undefined) return undefined;
        const fault: Fault = { kind, domain, count };
        if (port !== undefined) fault.port = port;
        return fault;
      }
      case 'crash-domain': {
        const p = params(['domain'], ['domain'], { domain: 'domain: guest1' });
        const d = p?.f.get('domain')?.value;
        const domain = d && this.guestRef(d, keyPath(at, 'domain'));
        return domain === undefined ? undefined : { kind, domain };
      }
      case 'slow-hotplug': {
        // libxl kills a hotplug script after LIBXL_HOTPLUG_TIMEOUT (10 s); longer delays are allowed
        // on purpose (they show that timeout).
        const p = params(['delay'], ['delay'], { delay: 'delay: 2s' });
        const d = p?.f.get('delay')?.value;
        const delay = d && c.duration(d, keyPath(at, 'delay'), { min: 0.001 });
        return delay === undefined ? undefined : { kind, delay };
      }
    }
  }

  private signal(node: SNode, path: string): string | undefined {
    const names = Object.keys(SIGNALS);
    const text = this.c.text(node, path, 'KILL');
    if (text === undefined) return undefined;
    const full = text.toUpperCase().startsWith('SIG') ? text.toUpperCase() : `SIG${text.toUpperCase()}`;
    if (names.includes(full)) return full;
    const short = names.map((n) => n.slice(3));
    return this.c.fail(path, node, `unknown signal "${text}"${fixHint(text.replace(/^SIG/i, ''), short)}`);
  }

  private errno(node: SNode, path: string): string | undefined {
    const names = Object.keys(ERRNO);
    const text = this.c.text(node, path, 'EIO');
    if (text === undefined) return undefined;
    if (names.includes(text)) return text;
    const close = fixHint(text.toUpperCase(), names);
    return this.c.fail(
      path,
      node,
      `unknown errno name "${text}"${close.startsWith('; did') ? close : '; e.g. EIO, ENOSPC or EBUSY'}`,
    );
  }

  // -------------------------------------------------------------------------------------- expectations

  private expect(node: SNode): Expectations {
    const c = this.c;
    const out: Expectations = {};
    const map = c.map(node, 'expect', '{ stall: none, deadlock: false }');
    if (map === undefined) return out;
    const f = c.fields(map, 'expect', EXPECT_KEYS, [], {}, 'expectation');
    let n: SNode | undefined;
    if ((n = f.get('stall')?.value)) {
      const stall = this.stall(n, 'expect.stall');
      if (stall) out.stall = stall;
    }
    if ((n = f.get('deadlock')?.value)) {
      const deadlock = c.bool(n, 'expect.deadlock');
      if (deadlock !== undefined) out.deadlock = deadlock;
    }
    if ((n = f.get('tap-ctl-list')?.value)) {
      const rows = c.each(n, 'expect.tap-ctl-list', '["minor=0"]', (row, p) => c.text(row, p, '"minor=0"'));
      if (rows) out.tapCtlList = rows;
    }
    if ((n = f.get('loop-devices')?.value)) {
      const rows = c.each(n, 'expect.loop-devices', '["/dev/loop0: (/srv/disk.img)"]', (row, p) =>
        c.text(row, p, '"/dev/loop0: (/srv/disk.img)"'),
      );
      if (rows) out.loopDevices = rows;
    }
    if ((n = f.get('xenstore-absent')?.value)) {
      const paths = c.each(n, 'expect.xenstore-absent', '[/local/domain/0/backend/vbd]', (item, p) =>
        this.xenstorePath(item, p),
      );
      if (paths) out.xenstoreAbsent = paths;
    }
    if ((n = f.get('xenstore')?.value)) {
      const m = c.map(n, 'expect.xenstore', '{ /local/domain/0/backend/vbd/1/51712/state: "6" }');
      if (m) {
        const values: Record<string, string> = {};
        for (const entry of m.entries) {
          const p = keyPath('expect.xenstore', entry.key);
          const key = this.xenstorePath({ kind: 'scalar', value: entry.key, pos: entry.keyPos }, p);
          const value = c.text(entry.value, p, '"6"');
          if (key !== undefined && value !== undefined) values[key] = value;
        }
        out.xenstore = values;
      }
    }
    if ((n = f.get('domains')?.value)) {
      const m = c.map(n, 'expect.domains', '{ dying: [], dead: [guest1] }');
      if (m) {
        const g = c.fields(m, 'expect.domains', DOMAIN_STATES, [], {}, 'domain state');
        const domains: Partial<Record<DomainState, string[]>> = {};
        const seen = new Map<string, string>();
        for (const state of DOMAIN_STATES) {
          const list = g.get(state)?.value;
          if (!list) continue;
          const statePath = keyPath('expect.domains', state);
          domains[state] = c.each(list, statePath, '[guest1]', (item, p) => {
            const name = this.guestRef(item, p);
            if (name === undefined) return undefined;
            const other = seen.get(name);
            if (other !== undefined) return c.fail(p, item, `"${name}" is already expected to be ${other}`);
            seen.set(name, state);
            return name;
          });
        }
        out.domains = domains;
      }
    }
    if ((n = f.get('data')?.value)) {
      const data = c.each(
        n,
        'expect.data',
        '[{ image: disk.img, offset: 0, length: 64KiB, pattern: seq }]',
        (item, p) => this.dataExpectation(item, p),
      );
      if (data) out.data = data;
    }
    if ((n = f.get('log')?.value)) {
      const log = c.each(n, 'expect.log', '[{ domain: dom0, contains: "text" }]', (item, p) =>
        this.logExpectation(item, p),
      );
      if (log) out.log = log;
    }
    if ((n = f.get('elapsed')?.value)) {
      const elapsed = this.bounds(n, 'expect.elapsed');
      if (elapsed) out.elapsed = elapsed;
    }
    if ((n = f.get('oops')?.value)) {
      const oops = this.matcher(n, 'expect.oops');
      if (oops) out.oops = oops;
    }
    return out;
  }

  private stall(node: SNode, path: string): StallExpectation | undefined {
    const c = this.c;
    const example = '{ chain: ["libxl", "tapdisk", "blktap", "blkback"], broken-by: "select" }';
    if (node.kind === 'scalar') {
      if (node.value === 'none') return { kind: 'none' };
      return c.fail(path, node, `expected none or a map like ${example}, got ${describeNode(node)}`);
    }
    const map = c.map(node, path, example);
    if (map === undefined) return undefined;
    const f = c.fields(map, path, ['chain', 'broken-by', 'count'], ['chain'], {
      chain: 'chain: ["libxl", "tapdisk"]',
    });
    const chainNode = f.get('chain')?.value;
    const chain =
      chainNode &&
      c.each(chainNode, keyPath(path, 'chain'), '["libxl", "tapdisk"]', (item, p) => this.matcher(item, p));
    if (chainNode?.kind === 'seq' && chainNode.items.length === 0)
      c.fail(keyPath(path, 'chain'), chainNode, 'name at least one holder, e.g. ["tapdisk"]');
    const b = f.get('broken-by')?.value;
    const brokenBy = b && this.matcher(b, keyPath(path, 'broken-by'));
    const n = f.get('count')?.value;
    const count = n && c.int(n, keyPath(path, 'count'), 0, 1_000_000);
    if (
      chain === undefined ||
      chain.length === 0 ||
      (b && brokenBy === undefined) ||
      (n && count === undefined)
    ) {
      return undefined;
    }
    const stall: StallExpectation = { kind: 'chain', chain };
    if (brokenBy !== undefined) stall.brokenBy = brokenBy;
    if (count !== undefined) stall.count = count;
    return stall;
  }

  private matcher(node: SNode, path: string): TextMatcher | undefined {
    const text = this.c.text(node, path, '"tapdisk" or "/tapdisk\\[\\d+\\]/"');
    if (text === undefined) return undefined;
    const re = REGEX_MATCHER_RE.exec(text);
    if (re === null) return { kind: 'substring', text };
    try {
      new RegExp(re[1], re[2]);
    } catch (error) {
      return this.c.fail(path, node, `bad regular expression ${text}: ${(error as Error).message}`);
    }
    return { kind: 'regex', source: re[1], flags: re[2] };
  }

  private dataExpectation(node: SNode, path: string): DataExpectation | undefined {
    const c = this.c;
    const map = c.map(node, path, '{ image: disk.img, offset: 0, length: 64KiB, pattern: seq }');
    if (map === undefined) return undefined;
    const keys = ['image', 'offset', 'length', 'pattern'];
    const f = c.fields(map, path, keys, keys, {
      image: 'image: disk.img',
      offset: 'offset: 0',
      length: 'length: 64KiB',
      pattern: 'pattern: seq',
    });
    const i = f.get('image')?.value;
    const o = f.get('offset')?.value;
    const l = f.get('length')?.value;
    const p = f.get('pattern')?.value;
    const image = i && this.imageRef(i, keyPath(path, 'image'));
    const offset = o && c.size(o, keyPath(path, 'offset'), { min: 0, max: 2 * TiB });
    const length = l && c.size(l, keyPath(path, 'length'), { min: 1, max: 2 * TiB });
    const pattern = p && this.pattern(p, keyPath(path, 'pattern'));
    if (image === undefined || offset === undefined || length === undefined || pattern === undefined)
      return undefined;
    return { image, offset, length, pattern };
  }

  private logExpectation(node: SNode, path: string): LogExpectation | undefined {
    const c = this.c;
    const map = c.map(node, path, '{ domain: dom0, contains: "text" }');
    if (map === undefined) return undefined;
    const f = c.fields(map, path, ['domain', 'contains', 'not-contains'], ['domain'], {
      domain: 'domain: dom0',
    });
    const d = f.get('domain')?.value;
    const domain = d && this.anyDomainRef(d, keyPath(path, 'domain'));
    const has = f.get('contains');
    const hasNot = f.get('not-contains');
    if ((has === undefined) === (hasNot === undefined)) {
      return c.fail(path, hasNot?.keyPos ?? map, 'give exactly one of contains or not-contains');
    }
    const matcher = this.matcher((has ?? hasNot)!.value, keyPath(path, has ? 'contains' : 'not-contains'));
    if (domain === undefined || matcher === undefined) return undefined;
    return has ? { domain, contains: matcher } : { domain, notContains: matcher };
  }

  private bounds(node: SNode, path: string): TimeBounds | undefined {
    const c = this.c;
    const map = c.map(node, path, '{ at-least: 5s, at-most: 6s }');
    if (map === undefined) return undefined;
    const f = c.fields(map, path, ['at-least', 'at-most']);
    if (map.entries.length === 0)
      return c.fail(path, map, 'give at-least, at-most or both, e.g. { at-most: 6s }');
    const lo = f.get('at-least')?.value;
    const hi = f.get('at-most')?.value;
    const atLeast = lo && c.duration(lo, keyPath(path, 'at-least'));
    const atMost = hi && c.duration(hi, keyPath(path, 'at-most'));
    if (f.size !== map.entries.length || (lo && atLeast === undefined) || (hi && atMost === undefined))
      return undefined;
    if (atLeast !== undefined && atMost !== undefined && atLeast > atMost) {
      return c.fail(keyPath(path, 'at-most'), hi, 'at-most is below at-least; swap them');
    }
    const bounds: TimeBounds = {};
    if (atLeast !== undefined) bounds.atLeast = atLeast;
    if (atMost !== undefined) bounds.atMost = atMost;
    return bounds;
  }

  // --------------------------------------------------------------------------------------- shared bits

  private pattern(node: SNode, path: string): Pattern | undefined {
    const text = this.c.text(node, path, PATTERN_EXAMPLE);
    if (text === undefined) return undefined;
    const result = parsePattern(text);
    return result.ok ? result.value : this.c.fail(path, node, result.message);
  }

  private xenstorePath(node: SNode, path: string): string | undefined {
    const text = this.c.string(node, path, '/local/domain/0/backend/vbd');
    if (text === undefined) return undefined;
    if (!text.startsWith('/')) {
      return this.c.fail(
        path,
        node,
        `xenstore path "${text}" is relative; write it in full, like /local/domain/0/${text}`,
      );
    }
    if (text.length > XENSTORE_PATH_MAX || !XENSTORE_PATH_RE.test(text)) {
      return this.c.fail(
        path,
        node,
        `bad xenstore path "${text}"; segments use letters, digits, _ @ and -, without empty or trailing /`,
      );
    }
    return text;
  }

  private guestRef(node: SNode, path: string): string | undefined {
    const name = this.c.string(node, path, 'guest1');
    if (name !== undefined) this.guestRefs.push({ path, node, name });
    return name;
  }

  private anyDomainRef(node: SNode, path: string): string | undefined {
    const name = this.c.string(node, path, 'dom0');
    if (name !== undefined) this.anyDomainRefs.push({ path, node, name });
    return name;
  }

  private imageRef(node: SNode, path: string): string | undefined {
    const name = this.c.string(node, path, 'disk.img');
    if (name !== undefined) this.imageRefs.push({ path, node, name });
    return name;
  }

  private checkRefs(): void {
    const c = this.c;
    const unknown = (ref: Refs, what: string, names: string[], declare: string) => {
      const hint = fixHint(ref.name, names);
      const tail = hint.startsWith('; did')
        ? hint
        : names.length > 0
          ? `; declared: ${names.join(', ')}`
          : `; ${declare}`;
      c.fail(ref.path, ref.node, `unknown ${what} "${ref.name}"${tail}`);
    };
    for (const ref of this.guestRefs) {
      if (this.domainNames.includes(ref.name)) continue;
      if ((RESERVED_DOMAIN_NAMES as readonly string[]).includes(ref.name)) {
        c.fail(ref.path, ref.node, `this must name a guest, not dom0`);
      } else unknown(ref, 'domain', this.domainNames, 'declare guests under domains:');
    }
    for (const ref of this.anyDomainRefs) {
      if (ref.name === DOM0_NAME || this.domainNames.includes(ref.name)) continue;
      unknown(ref, 'domain', [DOM0_NAME, ...this.domainNames], 'declare guests under domains:');
    }
    for (const ref of this.imageRefs) {
      if (this.imageNames.includes(ref.name)) continue;
      unknown(ref, 'image', this.imageNames, 'declare images under host.images:');
    }
  }
}

/** Sizes used by defaults, exported for the formatter and tests. */
export const DEFAULT_HOST_MEMORY = 64 * MiB;
export const DEFAULT_DOMAIN_MEMORY = 16 * MiB;
