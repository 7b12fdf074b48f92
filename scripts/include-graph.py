#!/usr/bin/python3
"""include-graph.py - the #include graph of tsi's C sources, and its rules.

Usage: scripts/include-graph.py [--report] [SOURCE_DIR]

Checks, per component (lib/<layer>/, include/tsi/, and each program's
folder):
  1. no include circle: no header reaches itself through #include lines;
  2. no module circle: a module is a .c file and its .h of the same name;
     module a uses module b when a's .c or .h includes b.h. Modules that
     use each other, directly or around a longer loop, form a circle;
  3. lib layers include only their own and lower layers' headers
     (docs/internals/layout.md): core <- token <- audit; core <- policy,
     attest, net.
Exit 1 when a rule is broken, each finding on one line. --report also
prints every component's module graph.
"""
import os
import re
import sys

INC = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)

# Public headers of each lib layer (include/tsi/<name>.h).
LAYER_OF_HEADER = {
    'err': 'core', 'log': 'core', 'buf': 'core', 'file': 'core',
    'b64url': 'core', 'hex': 'core', 'config': 'core', 'wipe': 'core', 'curlmsg': 'core',
    'secrets_spec': 'core',
    'signer': 'token', 'x509': 'token', 'jwt': 'token',
    'policy': 'policy', 'audit': 'audit', 'attest': 'attest',
    'net': 'net', 'tls': 'net',
}
LAYER_MAY_USE = {
    'core': {'core'},
    'token': {'core', 'token'},
    'policy': {'core', 'policy'},
    'audit': {'core', 'token', 'audit'},
    'attest': {'core', 'attest'},
    'net': {'core', 'net'},
}
PROGRAMS = ['cli', 'issuer', 'vault-plugin', 'sidecar', 'injector', 'attest']


def sources(d):
    out = []
    for root, _, files in os.walk(d):
        for f in sorted(files):
            if f.endswith(('.c', '.h')):
                out.append(os.path.join(root, f))
    return sorted(out)


def resolve(src_dir, f, name):
    """The file an #include "name" in f names, or None (system/generated)."""
    for base in (os.path.dirname(f), os.path.join(src_dir, 'include'),
                 src_dir):
        p = os.path.normpath(os.path.join(base, name))
        if os.path.isfile(p):
            return p
    return None


def includes(src_dir, f):
    with open(f, encoding='utf-8', errors='replace') as fh:
        text = fh.read()
    out = []
    for name in INC.findall(text):
        p = resolve(src_dir, f, name)
        if p is not None:
            out.append(p)
    return out


def circles(graph):
    """Strongly connected components with more than one node, or a
    self-loop (Tarjan, iterative)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1 or v in graph.get(v, ()):
                    out.append(sorted(comp))
    return out


def stem(p):
    return os.path.splitext(os.path.basename(p))[0]


def check_component(src_dir, name, d, report):
    files = sources(d)
    inside = set(files)
    edges = {f: [g for g in includes(src_dir, f) if g in inside]
             for f in files}
    problems = []
    hdr = {f: [g for g in gs if g.endswith('.h')]
           for f, gs in edges.items() if f.endswith('.h')}
    for comp in circles(hdr):
        problems.append('%s: include circle: %s' % (
            name, ' -> '.join(os.path.relpath(c, src_dir) for c in comp)))
    mods = {}
    for f, gs in edges.items():
        a = stem(f)
        for g in gs:
            b = stem(g)
            if b != a and g.endswith('.h'):
                mods.setdefault(a, set()).add(b)
    for comp in circles(mods):
        problems.append('%s: module circle: %s' % (name, ', '.join(comp)))
    if report:
        for a in sorted(mods):
            print('%s: %s -> %s' % (name, a, ' '.join(sorted(mods[a]))))
    return problems


def check_layers(src_dir):
    problems = []
    for layer, may in sorted(LAYER_MAY_USE.items()):
        d = os.path.join(src_dir, 'lib', layer)
        for f in sources(d):
            for g in includes(src_dir, f):
                rel = os.path.relpath(g, os.path.join(src_dir, 'include'))
                if not rel.startswith('tsi' + os.sep):
                    continue
                # A header not in the table belongs to the layer its name
                # starts with (audit_sink.h: audit).
                used = LAYER_OF_HEADER.get(stem(g),
                                           LAYER_OF_HEADER.get(
                                               stem(g).split('_')[0]))
                if used is None:
                    problems.append('%s: includes %s, a header of no layer'
                                    % (os.path.relpath(f, src_dir), rel))
                elif used not in may:
                    problems.append('%s (layer %s) includes %s (layer %s)'
                                    % (os.path.relpath(f, src_dir), layer,
                                       rel, used))
    return problems


def main(argv):
    report = '--report' in argv
    args = [a for a in argv if a != '--report']
    src_dir = os.path.abspath(args[0] if args else
                              os.path.join(os.path.dirname(__file__), '..'))
    comps = [('include/tsi', os.path.join(src_dir, 'include', 'tsi'))]
    lib = os.path.join(src_dir, 'lib')
    comps += [('lib/' + l, os.path.join(lib, l)) for l in
              sorted(os.listdir(lib)) if os.path.isdir(os.path.join(lib, l))]
    comps += [(p, os.path.join(src_dir, p)) for p in PROGRAMS
              if os.path.isdir(os.path.join(src_dir, p))]
    problems = []
    for name, d in comps:
        problems += check_component(src_dir, name, d, report)
    problems += check_layers(src_dir)
    for p in problems:
        print(p)
    if not problems:
        print('include graph: %d components, no circle, layers in order'
              % len(comps))
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
