import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import ts from 'typescript';

/**
 * Every document a code comment or a README/docs link names must be in this repository, so a reader can follow
 * it from a plain checkout. Comments cite docs by section (`docs/protocol.md §9.5`), so a cited section must exist
 * too. The specs used to live beside the checkout, where no reader of the repository finds them.
 */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CODE_DIRS = ['src', 'test', 'bench', 'migrations', 'scripts', 'examples'];
const SCRIPT_EXTENSIONS = new Set(['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs']);

/** A path ending in `.md`, optionally followed by the section it cites: `docs/protocol.md` 8.5, `… §9.5`, `… section BR-1`. */
const DOC_REFERENCE =
  /((?:\.{1,2}\/)*[\w./-]*[\w-]+\.md)\b`?(?:,?\s+(?:§\s*|sections?\s+)?(\d+(?:\.\d+)*|BR-\d+)\b)?/g;
/** Markdown links `[text](target)`; the target may carry a title. */
const MARKDOWN_LINK = /\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g;
/** What must never be cited: the specs' old home outside the repository. */
const OUTSIDE_SPECS = /shared\/spec\b/;

interface Citation {
  /** The citing file, relative to the repository root. */
  from: string;
  /** The path as written. */
  target: string;
  section?: string | undefined;
  /** Directories the path may be relative to, tried in order. */
  bases: string[];
}

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) return [];
    const path = join(dir, entry.name);
    return entry.isDirectory() ? walk(path) : [path];
  });
}

/** Nodes whose first token is `{`, `[` or `(`: an empty one may still hold a comment after it. */
const OPENS_WITH_PUNCTUATION = new Set<ts.SyntaxKind>([
  ts.SyntaxKind.Block,
  ts.SyntaxKind.ModuleBlock,
  ts.SyntaxKind.CaseBlock,
  ts.SyntaxKind.ObjectLiteralExpression,
  ts.SyntaxKind.ArrayLiteralExpression,
  ts.SyntaxKind.ParenthesizedExpression,
  ts.SyntaxKind.TypeLiteral,
  ts.SyntaxKind.NamedImports,
  ts.SyntaxKind.NamedExports,
  ts.SyntaxKind.ObjectBindingPattern,
  ts.SyntaxKind.ArrayBindingPattern,
]);

/** The comments of a script, found through the TypeScript parser so that `//` inside strings and regexes is not one. */
function scriptComments(fileName: string, text: string): string[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false);
  const ranges = new Map<number, ts.CommentRange>();
  const collect = (list: ts.CommentRange[] | undefined): void => {
    for (const range of list ?? []) ranges.set(range.pos, range);
  };
  // A comment is trivia before some token. Tokens that are not nodes (`}`, `)`, `,`) follow a node's end or, in an
  // empty block or list, its opening token, so scanning from each node's start and end (and after `{`) finds all.
  const visit = (node: ts.Node): void => {
    collect(ts.getLeadingCommentRanges(text, node.pos));
    collect(ts.getLeadingCommentRanges(text, node.end));
    collect(ts.getTrailingCommentRanges(text, node.end));
    if (OPENS_WITH_PUNCTUATION.has(node.kind))
      collect(ts.getLeadingCommentRanges(text, node.getStart(source) + 1));
    ts.forEachChild(node, visit);
  };
  visit(source);
  return [...ranges.values()].sort((a, b) => a.pos - b.pos).map((range) => text.slice(range.pos, range.end));
}

function otherComments(fileName: string, text: string): string[] {
  const pattern = extname(fileName) === '.html' ? /<!--[\s\S]*?-->/g : /\/\*[\s\S]*?\*\//g;
  return [...text.matchAll(pattern)].map((m) => m[0]);
}

function citationsIn(from: string, text: string, bases: string[]): Citation[] {
  return [...text.matchAll(DOC_REFERENCE)].map((m) => ({ from, target: m[1]!, section: m[2], bases }));
}

function codeCitations(): { citations: Citation[]; outside: string[] } {
  const citations: Citation[] = [];
  const outside: string[] = [];
  for (const file of CODE_DIRS.flatMap((d) => walk(join(ROOT, d)))) {
    const ext = extname(file);
    if (!SCRIPT_EXTENSIONS.has(ext) && ext !== '.html' && ext !== '.css') continue;
    const text = readFileSync(file, 'utf8');
    const comments = SCRIPT_EXTENSIONS.has(ext) ? scriptComments(file, text) : otherComments(file, text);
    const from = relative(ROOT, file);
    for (const comment of comments) {
      if (OUTSIDE_SPECS.test(comment)) outside.push(`${from}: ${comment.trim().slice(0, 120)}`);
      // A path starting with a dot is relative to the citing file; anything else is a repository path.
      for (const c of citationsIn(from, comment, [ROOT])) {
        citations.push(c.target.startsWith('.') ? { ...c, bases: [dirname(file)] } : c);
      }
    }
  }
  return { citations, outside };
}

function markdownFiles(): string[] {
  return [join(ROOT, 'README.md'), ...walk(join(ROOT, 'docs')).filter((f) => f.endsWith('.md'))];
}

function markdownCitations(): { citations: Citation[]; outside: string[] } {
  const citations: Citation[] = [];
  const outside: string[] = [];
  for (const file of markdownFiles()) {
    const text = readFileSync(file, 'utf8');
    const from = relative(ROOT, file);
    if (OUTSIDE_SPECS.test(text)) outside.push(from);
    for (const [, target] of text.matchAll(MARKDOWN_LINK)) {
      if (/^(?:[a-z][a-z0-9+.-]*:|#)/i.test(target!)) continue; // external URL or in-page anchor
      citations.push({ from, target: decodeURI(target!.split('#')[0]!), bases: [dirname(file)] });
    }
    // Paths named in prose or code spans: next to the document, or from the repository root.
    citations.push(...citationsIn(from, text, [dirname(file), ROOT]));
  }
  return { citations, outside };
}

/** The section ids a document's headings define: `## 9. Duplicate …` → 9, `### 9.5 Ordering` → 9.5, `### BR-1 …`. */
function sectionIds(markdown: string): Set<string> {
  const ids = new Set<string>();
  for (const m of markdown.matchAll(/^#{1,6}\s+(BR-\d+|\d+(?:\.\d+)*)\.?\s/gm)) ids.add(m[1]!);
  return ids;
}

/** What is wrong with one citation, or undefined. */
function problemOf(c: Citation): string | undefined {
  const where = `${c.from} cites ${c.target}${c.section ? ` ${c.section}` : ''}`;
  const candidates = c.bases.map((base) => resolve(base, c.target));
  const inside = candidates.filter((p) => p === ROOT || p.startsWith(ROOT.endsWith(sep) ? ROOT : ROOT + sep));
  if (inside.length === 0) return `${where}: outside the repository`;
  const found = inside.find((p) => existsSync(p));
  if (!found) return `${where}: no such file in the repository`;
  if (c.section && found.endsWith('.md') && !sectionIds(readFileSync(found, 'utf8')).has(c.section)) {
    return `${where}: ${relative(ROOT, found)} has no section ${c.section}`;
  }
  return undefined;
}

describe('document references', function () {
  this.timeout(60_000); // parses every script of the repository

  it('finds a missing document, a missing section and a path outside the repository', () => {
    const script = [
      "const a = 'http://x/README.md // not a comment'; // see docs/missing.md",
      '/* docs/protocol.md §99 */',
      'function f() {',
      '  // docs/in-empty-block.md',
      '}',
    ].join('\n');
    const found = scriptComments('x.ts', script).flatMap((text) => citationsIn('src/x.ts', text, [ROOT]));
    expect(found.map((c) => c.target)).to.deep.equal([
      'docs/missing.md',
      'docs/protocol.md',
      'docs/in-empty-block.md',
    ]);
    expect(problemOf(found[0]!)).to.match(/no such file/);
    expect(problemOf(found[1]!)).to.match(/no section 99/);
    expect(problemOf({ from: 'README.md', target: '../shared/spec/protocol.md', bases: [ROOT] })).to.match(
      /outside the repository/,
    );
    expect(
      problemOf({ from: 'src/x.ts', target: 'docs/protocol.md', section: '9.5', bases: [ROOT] }),
    ).to.equal(undefined);
  });

  it('every document a code comment names exists in the repository, with the cited section', () => {
    const { citations, outside } = codeCitations();
    expect(citations.length, 'citations found').to.be.greaterThan(50);
    expect(outside, 'comments citing ../shared/spec').to.deep.equal([]);
    expect([...new Set(citations.map(problemOf).filter(Boolean))]).to.deep.equal([]);
  });

  it('every link and document path in README.md and docs/*.md exists in the repository', () => {
    const { citations, outside } = markdownCitations();
    expect(outside, 'documents citing ../shared/spec').to.deep.equal([]);
    expect([...new Set(citations.map(problemOf).filter(Boolean))]).to.deep.equal([]);
  });
});
