"""A second implementation of neuroh5's section contraction, written from DOMAIN A.4 for cross-checking:
read an SWC (id type x y z radius parent [layer], ids 0..N-1 in file order) and print its sections and
section edges as JSON. Iterative, unlike the recursive Rust version."""
import json
import sys

types, parent = [], []
for line in open(sys.argv[1]):
    f = line.split("#")[0].split()
    if len(f) < 7:
        continue
    assert int(f[0]) == len(types), "ids must be 0..N-1 in file order"
    types.append(int(f[1]))
    parent.append(int(f[6]))
n = len(types)
children = [[] for _ in range(n)]
for i, p in enumerate(parent):
    if p >= 0:
        children[p].append(i)
roots = [i for i in range(n) if parent[i] < 0]

sections = [[]]
edges = set()
# Work items: (start point, parent section, last point of the parent section). Processed depth first in
# ascending point order, so children are pushed in reverse.
stack = [(r, 0, 0) for r in reversed(roots)]
while stack:
    v, sp, spp = stack.pop()
    t = types[v]
    if len(sections[sp]) > 1:
        sections.append([v])
        s = len(sections) - 1
        edges.add((sp, s))
    else:
        sections[sp].append(v)
        s = sp
    outs = children[v]
    changed = False
    while len(outs) == 1 and not changed:
        v = outs[0]
        if types[v] != t:
            changed = True
        else:
            sections[s].append(v)
            outs = children[v]
    if not outs and len(sections[s]) == 1 and spp != v:
        sections[s].insert(0, spp)
    if len(outs) > 1 or changed:
        for o in reversed(outs):
            stack.append((o, s, v))

print(json.dumps({"sections": sections, "edges": sorted(edges)}))
