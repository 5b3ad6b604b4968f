#!/usr/bin/env python3
"""check_ord.py: connreg's memory-ordering discipline, checked (issue #9).

The convention (docs/design.md, "Memory ordering, tag by tag"):

1. Every atomic operation in src/*.c and src/*.h (atomic_load/store/
   exchange/compare_exchange_*/fetch_*[_explicit], atomic_flag_*,
   atomic_thread_fence, atomic_signal_fence, __atomic_* and __sync_*
   builtins; atomic_init is exempt: it initialises a word before the
   segment or handle is published) carries an ANNOTATION, which is either

     a tag with a side:  ORD-n(w)  the writing / releasing / publishing side
                         ORD-n(r)  the reading / acquiring / observing side
                         ORD-n(rw) a read-modify-write that is both sides of
                                   its own pairing (an acq_rel RMW chain)
   or, only when every memory order the operation names is relaxed,
     a reason:           "Relaxed: <why>" (or "Relaxed (...): <why>").

   An operation with no memory_order_* / __ATOMIC_* argument counts as
   seq_cst (the non-_explicit forms), so it needs a tag.

2. Where the annotation is looked for. The operation's ANNOTATION TEXT is
   the text of every comment overlapping the lines of the call (from its
   name to its closing parenthesis), plus the text of its GOVERNING BLOCK
   comment, if any: the nearest comment above it that begins its line
   (nothing but blanks before "/*" or "//"), provided that every line
   between that comment's last line and the operation is a code line that
   is not blank, does not begin with "}", is not a lone "{", and does not
   begin with another comment. Such a comment governs the FIRST atomic
   operation below it within that stretch; it governs the later ones in the
   same stretch only if it contains the words "(here and below)".

3. Tags. Every ORD-n mentioned in a comment of src/ (with or without a
   side) must be a row of the table in docs/design.md's section "Memory
   ordering, tag by tag" (rows "| ORD-n | release side | acquire side |
   what breaks |", four non-empty cells, one row per tag); every tag used
   in src/ needs at least one (w) and at least one (r) marker there ((rw)
   counts as both); every row of the table must be used in src/; every
   ORD-n in design.md's prose must be a row.

4. Invariants. Every INV-n cited in a comment of src/*.[ch] or tests/*.[ch]
   must be defined ("**INV-n") in design.md's section "Invariants".

Prints each violation as "path:line: message" (paths relative to the
root), exits 1 if there is any, else 0. --self-test runs the checker on
tests/ord_fixtures/ (fake sources and a fake design.md with known
violations) and exits 0 only when exactly the lines of
tests/ord_fixtures/expected.txt are reported. Python 3 standard library
only.
"""

import argparse
import bisect
import os
import re
import sys
import time

ATOMIC_OP = re.compile(
    r"\b(atomic_(?:load|store|exchange|compare_exchange_(?:strong|weak)"
    r"|fetch_(?:add|sub|or|and|xor))(?:_explicit)?"
    r"|atomic_flag_(?:test_and_set|clear)(?:_explicit)?"
    r"|atomic_thread_fence|atomic_signal_fence"
    r"|__atomic_\w+|__sync_\w+)\s*\(")
ORDER = re.compile(r"\bmemory_order_(relaxed|consume|acquire|release|acq_rel|seq_cst)\b"
                   r"|\b__ATOMIC_(RELAXED|CONSUME|ACQUIRE|RELEASE|ACQ_REL|SEQ_CST)\b")
MARKER = re.compile(r"\bORD-(\d+)\((w|r|rw)\)")
MENTION = re.compile(r"\bORD-(\d+)\b")
INV = re.compile(r"\bINV-(\d+)\b")
TOKEN = re.compile(r"/\*.*?(?:\*/|\Z)|//[^\n]*|\"(?:\\.|[^\"\\\n])*\"?|'(?:\\.|[^'\\\n])*'?",
                   re.S)
REASON = re.compile(r"\bRelaxed(?:\s*\([^)]*\))?:\s*\S")
HERE_AND_BELOW = "(here and below)"
TABLE_HEADING = re.compile(r"^##\s+(?:\d+\.\s*)?Memory ordering, tag by tag\b")
INV_HEADING = re.compile(r"^##\s+(?:\d+\.\s*)?Invariants\b")
INV_DEF = re.compile(r"\*\*INV-(\d+)")
ROW_TAG = re.compile(r"^\W*ORD-(\d+)\W*$")


class Comment:
    def __init__(self, start, end, text, leading):
        self.start = start      # 1-based line of "/*" or "//"
        self.end = end          # 1-based line of its last character
        self.text = text
        self.leading = leading  # nothing but blanks before it on its first line


class Source:
    """A C file split into code (comments removed, literals blanked) and comments."""

    def __init__(self, path, rel):
        self.path = path
        self.rel = rel
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        self.comments = []
        code = []
        pos, line = 0, 1
        for m in TOKEN.finditer(text):
            chunk = text[pos:m.start()]
            code.append(chunk)
            line += chunk.count("\n")
            tok = m.group(0)
            if tok[0] == "/":
                before = text[text.rfind("\n", 0, m.start()) + 1:m.start()]
                self.comments.append(Comment(line, line + tok.count("\n"), tok,
                                             before.strip() == ""))
                code.append(re.sub(r"[^\n]", " ", tok))
            else:   # a string or character literal: keep its quotes, blank its body
                code.append(tok[0] + " " * (len(tok) - 2) + tok[-1])
            line += tok.count("\n")
            pos = m.end()
        code.append(text[pos:])
        self.code = "".join(code)
        self.lines = self.code.split("\n")      # code only, index = line - 1
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", self.code)]
        self.leading_end = {}                   # line -> leading comment ending there
        self.leading_start = set()
        self.by_line = {}                       # line -> comments overlapping it
        for cm in self.comments:
            if cm.leading:
                self.leading_end[cm.end] = cm
                self.leading_start.add(cm.start)
            for ln in range(cm.start, cm.end + 1):
                self.by_line.setdefault(ln, []).append(cm)

    def line_of(self, offset):
        return bisect.bisect_right(self.line_starts, offset)

    def ops(self):
        """(name, first line, last line, argument text) of every atomic operation."""
        out = []
        for m in ATOMIC_OP.finditer(self.code):
            depth, k = 0, m.end() - 1
            while k < len(self.code):
                if self.code[k] == "(":
                    depth += 1
                elif self.code[k] == ")":
                    depth -= 1
                    if depth == 0:
                        break
                k += 1
            out.append((m.group(1), self.line_of(m.start()), self.line_of(k),
                        self.code[m.end():k]))
        return out

    def stops_reach(self, ln):
        """Does code line ln end the stretch a block comment governs?"""
        if ln in self.leading_start:
            return True
        s = self.lines[ln - 1].strip()
        return s == "" or s == "{" or s.startswith("}")

    def governing(self, first):
        """The block comment governing an operation on line `first`, or None."""
        ln = first - 1
        while ln >= 1:
            if ln in self.leading_end:
                return self.leading_end[ln]
            if self.stops_reach(ln):
                return None
            ln -= 1
        return None


def read_design(path, rel, report):
    """Table rows {n: line}, INV definitions, prose mentions [(n, line)]."""
    rows, invs, prose = {}, set(), []
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except OSError as e:
        report(rel, 1, "cannot read the design document: %s" % e.strerror)
        return rows, invs, prose
    section = None
    found_table = False
    for k, text in enumerate(lines, 1):
        if text.startswith("## "):
            section = ("table" if TABLE_HEADING.match(text) else
                       "inv" if INV_HEADING.match(text) else None)
            found_table |= section == "table"
            continue
        if section == "inv":
            invs.update(int(x) for x in INV_DEF.findall(text))
        if section == "table" and text.lstrip().startswith("|"):
            cells = [c.strip() for c in text.strip().strip("|").split("|")]
            m = ROW_TAG.match(cells[0]) if cells else None
            if not m:
                continue
            n = int(m.group(1))
            if n in rows:
                report(rel, k, "ORD-%d: a second table row (first on line %d)" % (n, rows[n]))
                continue
            rows[n] = k
            if len(cells) != 4 or not all(cells):
                report(rel, k, "ORD-%d: a table row needs 4 non-empty cells "
                               "(tag, release side, acquire side, what breaks)" % n)
            continue
        for m in MENTION.finditer(text):
            prose.append((int(m.group(1)), k))
    if not found_table:
        report(rel, 1, "no section \"Memory ordering, tag by tag\" with the ORD table")
    return rows, invs, prose


def sources(root, sub, exts):
    d = os.path.join(root, sub)
    if not os.path.isdir(d):
        return []
    return [Source(os.path.join(d, f), sub + "/" + f)
            for f in sorted(os.listdir(d)) if f.endswith(exts)]


def check(root):
    """All violations under root, as sorted "path:line: message" strings."""
    out = []

    def report(rel, line, msg):
        out.append((rel, line, msg))

    design_rel = "docs/design.md"
    rows, invs, prose = read_design(os.path.join(root, design_rel), design_rel, report)
    srcs = sources(root, "src", (".c", ".h"))
    if not srcs:
        report("src", 0, "no C sources found")
    sides = {}          # n -> {"w": [(rel, line)], "r": [...]}
    first_mention = {}  # n -> (rel, line)

    for src in srcs:
        for cm in src.comments:
            for m in MENTION.finditer(cm.text):
                n = int(m.group(1))
                ln = cm.start + cm.text.count("\n", 0, m.start())
                first_mention.setdefault(n, (src.rel, ln))
            for m in MARKER.finditer(cm.text):
                n = int(m.group(1))
                ln = cm.start + cm.text.count("\n", 0, m.start())
                for side in ("w", "r"):
                    if side in m.group(2):
                        sides.setdefault(n, {"w": [], "r": []})[side].append((src.rel, ln))
            for m in INV.finditer(cm.text):
                if int(m.group(1)) not in invs:
                    ln = cm.start + cm.text.count("\n", 0, m.start())
                    report(src.rel, ln, "INV-%s is not defined in %s (section Invariants)"
                           % (m.group(1), design_rel))

        ops = src.ops()
        for idx, (name, first, last, args) in enumerate(ops):
            texts = []
            for ln in range(first, last + 1):
                texts.extend(cm.text for cm in src.by_line.get(ln, []))
            gov = src.governing(first)
            if gov is not None:
                earlier = [o for o in ops[:idx] if o[1] > gov.end]
                if not earlier or HERE_AND_BELOW in gov.text:
                    texts.append(gov.text)
            note = "\n".join(texts)
            orders = [a or b.lower() for a, b in ORDER.findall(args)]
            relaxed = bool(orders) and all(o == "relaxed" for o in orders)
            what = "%s (%s)" % (name, ", ".join(orders) if orders else "seq_cst")
            if MARKER.search(note):
                continue
            if relaxed and REASON.search(note):
                continue
            if relaxed:
                report(src.rel, first, "%s has neither an ORD-n(w|r) tag nor a "
                                       "'Relaxed: <reason>'" % what)
            elif REASON.search(note):
                report(src.rel, first, "%s is not relaxed: a 'Relaxed:' reason does not "
                                       "cover it; it needs an ORD-n(w|r) tag" % what)
            else:
                report(src.rel, first, "%s has no ORD-n(w|r) tag" % what)

    for n, (rel, ln) in sorted(first_mention.items()):
        if n not in rows:
            report(rel, ln, "ORD-%d is not a row of the table in %s" % (n, design_rel))
        s = sides.get(n, {"w": [], "r": []})
        for side, what in (("w", "writing/releasing"), ("r", "reading/acquiring")):
            if not s[side]:
                report(rel, ln, "ORD-%d has no (%s) marker in src/: its %s side is "
                                "untagged" % (n, side, what))
    for n, ln in sorted(rows.items()):
        if n not in first_mention:
            report(design_rel, ln, "ORD-%d: table row not used in src/" % n)
    for n, ln in prose:
        if n not in rows:
            report(design_rel, ln, "ORD-%d is cited but is not a row of the table" % n)

    for t in sources(root, "tests", (".c", ".h")):
        for cm in t.comments:
            for m in INV.finditer(cm.text):
                if int(m.group(1)) not in invs:
                    ln = cm.start + cm.text.count("\n", 0, m.start())
                    report(t.rel, ln, "INV-%s is not defined in %s (section Invariants)"
                           % (m.group(1), design_rel))
    return ["%s:%d: %s" % v for v in sorted(set(out))]


def self_test(repo):
    fixtures = os.path.join(repo, "tests", "ord_fixtures")
    with open(os.path.join(fixtures, "expected.txt"), encoding="utf-8") as f:
        expected = sorted(set(l.rstrip("\n") for l in f
                              if l.strip() and not l.startswith("#")))
    got = check(fixtures)
    missing = [l for l in expected if l not in got]
    extra = [l for l in got if l not in expected]
    for l in missing:
        print("self-test: expected but not reported: %s" % l)
    for l in extra:
        print("self-test: reported but not expected: %s" % l)
    if missing or extra:
        print("self-test: FAILED (%d expected, %d reported)" % (len(expected), len(got)))
        return 1
    print("self-test: ok (%d expected violations reported, nothing else)" % len(expected))
    return 0


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=repo, help="tree to check (default: this repository)")
    ap.add_argument("--self-test", action="store_true",
                    help="check tests/ord_fixtures against its expected.txt")
    ap.add_argument("--time", action="store_true", help="print the run time on stderr")
    a = ap.parse_args()
    t0 = time.monotonic()
    if a.self_test:
        rc = self_test(repo)
    else:
        found = check(os.path.abspath(a.root))
        for v in found:
            print(v)
        rc = 1 if found else 0
        if not found:
            print("check_ord: every atomic in src/ is tagged or relaxed for a stated reason; "
                  "every tag has both sides and a table row")
    if a.time:
        print("check_ord: %.3f s" % (time.monotonic() - t0), file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
