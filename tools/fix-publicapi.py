#!/usr/bin/env python3
"""Applies a build log's RS0016/RS0017 diagnostics to the PublicAPI files of the projects named in it.

For a deliberate public-surface change: `dotnet build ... 2>&1 | tee log; python3 tools/fix-publicapi.py log`.
RS0016 (a public symbol not declared) appends it to PublicAPI.Unshipped.txt; RS0017 (a declared symbol gone)
removes it from whichever PublicAPI file has it. Review the diff: it is the API change.
"""
import re, sys, os
added, removed = {}, {}
for line in open(sys.argv[1], encoding='utf-8', errors='replace'):
    m = re.search(r"(RS0016|RS0017): Symbol '(.+?)' is (?:not part|part) of the declared (?:public )?API.*\[(.+?\.csproj)", line)
    if not m:
        continue
    code, sym, proj = m.groups()
    d = os.path.dirname(proj)
    (added if code == 'RS0016' else removed).setdefault(d, set()).add(sym)
for d, syms in removed.items():
    for f in ('PublicAPI.Shipped.txt', 'PublicAPI.Unshipped.txt'):
        p = os.path.join(d, f)
        lines = open(p, encoding='utf-8').read().splitlines()
        keep = [l for l in lines if l not in syms]
        open(p, 'w', encoding='utf-8').write('\n'.join(keep) + '\n')
for d, syms in added.items():
    p = os.path.join(d, 'PublicAPI.Unshipped.txt')
    lines = open(p, encoding='utf-8').read().splitlines()
    lines += sorted(s for s in syms if s not in lines)
    open(p, 'w', encoding='utf-8').write('\n'.join(l for l in lines if l) + '\n')
print({d: len(s) for d, s in added.items()}, 'added;', {d: len(s) for d, s in removed.items()}, 'removed')
