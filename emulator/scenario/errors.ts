/**
 * Scenario validation errors: every problem found in a file, each with its position and field path.
 */

/** A 1-based line and column in a scenario file. */
export interface SourcePos {
  line: number;
  column: number;
}

export interface ScenarioIssue {
  /** The file as the user named it; undefined for scenarios built in TypeScript. */
  file?: string;
  /** 1-based; undefined when there is no file. */
  line?: number;
  /** 1-based; undefined when there is no file. */
  column?: number;
  /** Field path such as `steps[3].guest`; "" for YAML syntax errors. */
  path: string;
  message: string;
}

/** `file:line:column: path: message`, leaving out the parts an issue does not have. */
export function formatIssue(issue: ScenarioIssue): string {
  const where: string[] = [];
  if (issue.file !== undefined) {
    where.push(issue.line !== undefined ? `${issue.file}:${issue.line}:${issue.column ?? 1}` : issue.file);
  }
  if (issue.path !== '') where.push(issue.path);
  where.push(issue.message);
  return where.join(': ');
}

/** Compares field paths with their indexes as numbers: steps[2] before steps[10]. */
function comparePaths(a: string, b: string): number {
  const split = (p: string) => p.split(/(\d+)/);
  const pa = split(a);
  const pb = split(b);
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    if (pa[i] === pb[i]) continue;
    // Odd pieces are the digit runs.
    if (i % 2 === 1) return Number(pa[i]) - Number(pb[i]);
    return pa[i] < pb[i] ? -1 : 1;
  }
  return pa.length - pb.length;
}

/**
 * Orders issues by position; issues without one (scenarios built in TypeScript) follow, ordered by
 * field path with indexes compared as numbers. Equal keys keep their order.
 */
export function sortIssues(issues: readonly ScenarioIssue[]): ScenarioIssue[] {
  return issues
    .map((issue, index) => ({ issue, index }))
    .sort((a, b) => {
      const la = a.issue.line ?? Number.POSITIVE_INFINITY;
      const lb = b.issue.line ?? Number.POSITIVE_INFINITY;
      if (la !== lb) return la - lb;
      const ca = a.issue.column ?? 0;
      const cb = b.issue.column ?? 0;
      if (ca !== cb) return ca - cb;
      if (a.issue.line === undefined) {
        const byPath = comparePaths(a.issue.path, b.issue.path);
        if (byPath !== 0) return byPath;
      }
      return a.index - b.index;
    })
    .map((entry) => entry.issue);
}

/** Thrown by the loader and the builder; `.issues` holds every problem, sorted by position. */
export class ScenarioError extends Error {
  readonly issues: readonly ScenarioIssue[];

  constructor(issues: readonly ScenarioIssue[]) {
    const sorted = sortIssues(issues);
    super(sorted.map(formatIssue).join('\n'));
    this.name = 'ScenarioError';
    this.issues = sorted;
  }

  /** One issue per line, `file:line:column: path: message`. */
  format(): string {
    return this.issues.map(formatIssue).join('\n');
  }
}

/** Where issues are gathered while a scenario is checked. */
export class IssueList {
  readonly items: ScenarioIssue[] = [];

  constructor(readonly file: string | undefined) {}

  add(path: string, pos: SourcePos | undefined, message: string): void {
    this.items.push({
      file: this.file,
      line: pos?.line,
      column: pos?.column,
      path,
      message,
    });
  }

  get empty(): boolean {
    return this.items.length === 0;
  }
}
