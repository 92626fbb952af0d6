/**
 * `npm run lint` part: fails on an import cycle among the modules of src/ and migrations/. A cycle makes the order
 * in which ESM evaluates its modules depend on which one is imported first (a class used before its module ran is
 * a TDZ error at start-up), and it ties components together that the layering (cli → server → mats/store/broker →
 * protocol/util) keeps apart. Type-only imports count too: they vanish at run time, but they still tie the
 * declarations together; a shared type belongs in a module both sides import.
 *
 * Uses the TypeScript compiler's parser (no extra dependency); relative specifiers only, as packages cannot import
 * us back. `ALLOWED` lists cycles accepted on purpose, each with its reason; a cycle is allowed if its files are
 * among one entry's (a refactoring may shrink it, not grow it), and only if type-only imports close it: a cycle
 * of run-time imports is never allowed. `FORBIDDEN` adds direction rules that hold without a cycle.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Cycles accepted on purpose: the member files of the strongly connected component, and why. */
const ALLOWED: readonly { files: readonly string[]; why: string }[] = [
  {
    files: [
      'src/broker/InMemoryBroker.ts',
      'src/broker/InMemoryChannel.ts',
      'src/broker/InMemoryConnection.ts',
      'src/broker/InMemoryQueue.ts',
    ],
    why: 'the embedded broker mirrors AMQP: broker → connection → channel → queue at run time; the children name their owners by type only',
  },
  {
    files: ['src/mats/MatsFactory.ts', 'src/mats/MatsFuturizer.ts'],
    why: 'the factory creates its futurizer, which names the factory it initiates through by type only',
  },
  {
    files: [
      'src/server/ServerCore.ts',
      'src/server/connection/ConnectionAuthState.ts',
      'src/server/connection/FramePipeline.ts',
      'src/server/connection/HelloHandler.ts',
      'src/server/connection/MatsSocketConnection.ts',
      'src/server/connection/PendingResumes.ts',
      'src/server/connection/ResumeCommitter.ts',
    ],
    why: 'a connection and its frame handlers work on the server core and the core keeps its connections (PendingResumes: those whose resume the store is still verifying): each side names the other by type only',
  },
];

/**
 * Directions the layering forbids even without a cycle: the server's message path reads one way, inbound (client →
 * backend) and outbound (backend/server → client) each import the shared `messaging/` folder and never each other.
 */
const FORBIDDEN: readonly { from: string; to: string; why: string }[] = [
  { from: 'src/server/inbound/', to: 'src/server/outbound/', why: 'inbound must not reach into outbound' },
  { from: 'src/server/outbound/', to: 'src/server/inbound/', why: 'outbound must not reach into inbound' },
  {
    from: 'src/server/messaging/',
    to: 'src/server/inbound/',
    why: 'the shared folder is imported by both directions',
  },
  {
    from: 'src/server/messaging/',
    to: 'src/server/outbound/',
    why: 'the shared folder is imported by both directions',
  },
];

/** The imports of `graph` that {@link FORBIDDEN} (or `rules`) rules out, as `from -> to: why`. */
export function forbiddenImports(
  graph: ReadonlyMap<string, readonly string[]>,
  rules: readonly { from: string; to: string; why: string }[] = FORBIDDEN,
): string[] {
  const found: string[] = [];
  for (const [file, imports] of graph) {
    for (const target of imports) {
      for (const rule of rules) {
        if (file.startsWith(rule.from) && target.startsWith(rule.to))
          found.push(`${file} -> ${target}: ${rule.why}`);
      }
    }
  }
  return found;
}

/** One relative import: the file it resolves to, and whether it is erased at run time. */
interface ImportEdge {
  path: string;
  typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** `import type`, `export type`, or an import/export whose every name is marked `type`. */
function isTypeOnly(node: ts.ImportDeclaration | ts.ExportDeclaration): boolean {
  if (ts.isExportDeclaration(node)) {
    if (node.isTypeOnly) return true;
    const clause = node.exportClause;
    return !!clause && ts.isNamedExports(clause) && clause.elements.every((e) => e.isTypeOnly);
  }
  const clause = node.importClause;
  if (!clause) return false; // a side-effect import
  if (clause.isTypeOnly) return true;
  const bindings = clause.namedBindings;
  return (
    !clause.name && !!bindings && ts.isNamedImports(bindings) && bindings.elements.every((e) => e.isTypeOnly)
  );
}

/** Relative imports and re-exports of one file, static and dynamic. */
function importsOf(file: string): ImportEdge[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const found: { specifier: string; typeOnly: boolean }[] = [];
  const visit = (node: ts.Node): void => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      found.push({ specifier: node.moduleSpecifier.text, typeOnly: isTypeOnly(node) });
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      found.push({ specifier: node.arguments[0].text, typeOnly: false });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found
    .filter((f) => f.specifier.startsWith('.'))
    .map((f) => ({ path: resolve(dirname(file), f.specifier), typeOnly: f.typeOnly }));
}

/** The strongly connected components with more than one file, or one file importing itself (Tarjan). */
export function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const connect = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) connect(v);
  return cycles;
}

/**
 * The import graph of src/ and migrations/, keyed by paths relative to the repository root; `runTimeOnly` leaves
 * out the imports that TypeScript erases.
 */
export function importGraph(base: string = root, runTimeOnly = false): Map<string, string[]> {
  const files = ['src', 'migrations'].flatMap((dir) => sourceFiles(join(base, dir)));
  return new Map(
    files.map((f) => [
      relative(base, f),
      importsOf(f)
        .filter((i) => !runTimeOnly || !i.typeOnly)
        .map((i) => relative(base, i.path)),
    ]),
  );
}

/** The cycles that fail the check: every run-time cycle, and every other cycle not covered by `allowed`. */
export function unexpectedCycles(
  all: readonly string[][],
  runTime: readonly string[][],
  allowed: readonly { files: readonly string[] }[] = ALLOWED,
): string[][] {
  const covered = (cycle: readonly string[]): boolean =>
    allowed.some((a) => cycle.every((file) => a.files.includes(file)));
  const runTimeKeys = new Set(runTime.map((c) => c.join(' ')));
  return [...runTime, ...all.filter((c) => !runTimeKeys.has(c.join(' ')) && !covered(c))];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const graph = importGraph();
  const cycles = findCycles(graph);
  const unexpected = unexpectedCycles(cycles, findCycles(importGraph(root, true)));
  for (const cycle of unexpected) console.error(`import cycle: ${cycle.join(' <-> ')}`);
  const forbidden = forbiddenImports(graph);
  for (const line of forbidden) console.error(`forbidden import: ${line}`);
  if (forbidden.length > 0) process.exitCode = 1;
  if (unexpected.length > 0) {
    console.error(
      `${unexpected.length} import cycle(s): move the shared type or function to a module both sides can import, or allow the cycle with its reason in scripts/checkCycles.ts`,
    );
    process.exitCode = 1;
  } else if (forbidden.length === 0) {
    console.log(
      `no import cycles among ${graph.size} modules (${cycles.length} allowed), no import against the direction rules`,
    );
  }
}
