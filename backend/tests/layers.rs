//! No import circles between the modules of `backend` and of `server` (see docs/architecture.md).
//!
//! Reads the sources, resolves every `crate::…`, `super::…` and child-module path (in `use` trees and inline)
//! to the file module that defines the item (following `pub use` re-exports), and fails on any cycle in the
//! resulting graph that crosses areas, printing it. An area is a top-level module (`jobs`, `backtest`, …),
//! and in `server` each `routes::<area>`; cycles inside one area (a `mod.rs` and its children) are allowed,
//! a cycle through two areas (`jobs → backtest::trace → jobs`) is not.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

type ModPath = Vec<String>;

struct Crate {
    /// Module path → its source with comments removed.
    modules: BTreeMap<ModPath, String>,
    /// (module, name) → module path (plus item) the name was re-exported from.
    reexports: BTreeMap<(ModPath, String), ModPath>,
}

fn strip_comments(src: &str) -> String {
    src.lines()
        .map(|l| match l.find("//") {
            // `"…//…"` (URLs in strings) would cut a line short: harmless, only string-bearing lines lose edges.
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn collect(dir: &Path, root: &Path, skip: &[&str], out: &mut BTreeMap<ModPath, String>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read source dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, root, skip, out);
            continue;
        }
        if p.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = p.strip_prefix(root).expect("under root");
        if skip.iter().any(|s| rel == Path::new(s)) {
            continue;
        }
        let mut segs: ModPath = rel
            .with_extension("")
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        if matches!(segs.last().map(String::as_str), Some("mod" | "lib")) {
            segs.pop();
        }
        let mut src = fs::read_to_string(&p).expect("read source");
        // Unit tests are not dependencies (and their `super::` means the file's module, not its parent).
        if let Some(i) = src.find("#[cfg(test)]\nmod ") {
            src.truncate(i);
        }
        out.insert(segs, strip_comments(&src));
    }
}

/// Parses a use tree (or an inline path) at the start of `s`; returns every full path it names, each with its
/// alias (`as x`) if any.
fn parse_tree(s: &str) -> Vec<(Vec<String>, Option<String>)> {
    fn ident(s: &[u8], i: &mut usize) -> Option<String> {
        while *i < s.len() && s[*i].is_ascii_whitespace() {
            *i += 1;
        }
        let start = *i;
        while *i < s.len() && (s[*i].is_ascii_alphanumeric() || s[*i] == b'_') {
            *i += 1;
        }
        (start < *i).then(|| String::from_utf8_lossy(&s[start..*i]).into_owned())
    }
    fn skip_ws(s: &[u8], i: &mut usize) {
        while *i < s.len() && s[*i].is_ascii_whitespace() {
            *i += 1;
        }
    }
    fn tree(
        s: &[u8],
        i: &mut usize,
        prefix: &[String],
        out: &mut Vec<(Vec<String>, Option<String>)>,
    ) {
        let mut path = prefix.to_vec();
        loop {
            skip_ws(s, i);
            if *i < s.len() && s[*i] == b'{' {
                *i += 1;
                loop {
                    skip_ws(s, i);
                    if *i >= s.len() {
                        return;
                    }
                    if s[*i] == b'}' {
                        *i += 1;
                        return;
                    }
                    if s[*i] == b',' {
                        *i += 1;
                        continue;
                    }
                    let before = *i;
                    tree(s, i, &path, out);
                    if *i == before {
                        *i += 1;
                    }
                }
            }
            if *i < s.len() && s[*i] == b'*' {
                *i += 1;
                out.push((path, None));
                return;
            }
            match ident(s, i) {
                Some(id) => path.push(id),
                None => {
                    out.push((path, None));
                    return;
                }
            }
            if s[*i..].starts_with(b"::") {
                *i += 2;
                continue;
            }
            let mut j = *i;
            skip_ws(s, &mut j);
            if s[j..].starts_with(b"as ") {
                j += 3;
                let alias = ident(s, &mut j);
                *i = j;
                out.push((path, alias));
            } else {
                out.push((path, None));
            }
            return;
        }
    }
    let mut out = Vec::new();
    let mut i = 0;
    tree(s.as_bytes(), &mut i, &[], &mut out);
    out
}

/// Turns a path written in module `me` into an absolute one, or `None` for external crates and std.
fn absolute(
    me: &[String],
    path: &[String],
    modules: &BTreeMap<ModPath, String>,
) -> Option<ModPath> {
    let mut base: ModPath = me.to_vec();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        Some(first) => {
            // A relative path is a child module (`pub use queue::JobQueue` in `jobs/mod.rs`).
            let mut child = me.to_vec();
            child.push(first.to_owned());
            if !modules.contains_key(&child) {
                return None;
            }
        }
        None => return None,
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

impl Crate {
    fn load(src: &Path, skip: &[&str]) -> Self {
        let mut modules = BTreeMap::new();
        collect(src, src, skip, &mut modules);
        let mut reexports = BTreeMap::new();
        for (me, text) in &modules {
            for (at, _) in text
                .match_indices("pub use ")
                .chain(text.match_indices("pub(crate) use "))
            {
                let start = at + text[at..].find("use ").expect("use") + 4;
                for (path, alias) in parse_tree(&text[start..]) {
                    let Some(abs) = absolute(me, &path, &modules) else {
                        continue;
                    };
                    let Some(name) = alias.or_else(|| path.last().cloned()) else {
                        continue;
                    };
                    reexports.insert((me.clone(), name), abs);
                }
            }
        }
        Self { modules, reexports }
    }

    /// The file module that defines what `path` names.
    fn resolve(&self, path: &[String]) -> ModPath {
        let mut path = path.to_vec();
        for _ in 0..8 {
            let mut m: ModPath = Vec::new();
            let mut i = 0;
            while i < path.len() {
                let mut next = m.clone();
                next.push(path[i].clone());
                if !self.modules.contains_key(&next) {
                    break;
                }
                m = next;
                i += 1;
            }
            match path
                .get(i)
                .and_then(|name| self.reexports.get(&(m.clone(), name.clone())))
            {
                Some(target) if target != &path => {
                    let mut p = target.clone();
                    p.extend(path[i + 1..].iter().cloned());
                    path = p;
                }
                _ => return m,
            }
        }
        Vec::new()
    }

    fn graph(&self) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
        let mut g: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
        for (me, text) in &self.modules {
            if me.is_empty() {
                // The crate root only declares modules and re-exports (followed by `resolve`).
                continue;
            }
            let children: Vec<String> = self
                .modules
                .keys()
                .filter(|k| k.len() == me.len() + 1 && k.starts_with(me))
                .map(|k| format!("{}::", k[me.len()]))
                .collect();
            let prefixes = ["crate::".to_owned(), "super::".to_owned()];
            for prefix in prefixes.iter().chain(&children) {
                for (at, _) in text.match_indices(prefix) {
                    let ok_before = text[..at]
                        .chars()
                        .next_back()
                        .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'));
                    if !ok_before {
                        continue;
                    }
                    for (path, _) in parse_tree(&text[at..]) {
                        let Some(abs) = absolute(me, &path, &self.modules) else {
                            continue;
                        };
                        let target = self.resolve(&abs);
                        if &target != me {
                            g.entry(me.clone()).or_default().insert(target);
                        }
                    }
                }
            }
        }
        g
    }
}

/// The area a module belongs to: its top-level module, or `routes::<area>` for route modules.
fn area(m: &ModPath) -> ModPath {
    let depth = if m.first().is_some_and(|s| s == "routes") {
        2
    } else {
        1
    };
    m.iter().take(depth).cloned().collect()
}

fn name(m: &ModPath) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

/// Every elementary cycle found by a depth-first search (one per back edge).
fn cycles(g: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    fn dfs(
        n: &ModPath,
        g: &BTreeMap<ModPath, BTreeSet<ModPath>>,
        stack: &mut Vec<ModPath>,
        done: &mut BTreeSet<ModPath>,
        out: &mut Vec<Vec<ModPath>>,
    ) {
        stack.push(n.clone());
        for m in g.get(n).into_iter().flatten() {
            if let Some(pos) = stack.iter().position(|s| s == m) {
                let mut c = stack[pos..].to_vec();
                c.push(m.clone());
                out.push(c);
            } else if !done.contains(m) {
                dfs(m, g, stack, done, out);
            }
        }
        stack.pop();
        done.insert(n.clone());
    }
    let mut out = Vec::new();
    let mut done = BTreeSet::new();
    for n in g.keys() {
        if !done.contains(n) {
            dfs(n, g, &mut Vec::new(), &mut done, &mut out);
        }
    }
    out
}

/// Circles other work on this issue removes (each a group of areas a circle may run through). The test
/// fails once a group no longer has a circle, so the entry is deleted with the circle.
const KNOWN: &[&[&str]] = &[];

fn assert_acyclic(dir: &str, skip: &[&str]) {
    // `LAYERS_ROOT` points the check at another checkout (e.g. to see it fail on an older commit).
    let root = std::env::var_os("LAYERS_ROOT").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
        PathBuf::from,
    );
    let src = root.join(dir);
    let krate = Crate::load(&src, skip);
    assert!(
        krate.modules.len() > 5,
        "no sources found under {}",
        src.display()
    );
    let g = krate.graph();
    let found: Vec<_> = cycles(&g)
        .into_iter()
        .filter(|c| c.iter().any(|m| area(m) != area(&c[0])))
        .collect();
    let known = |c: &Vec<ModPath>, group: &[&str]| {
        c.iter().all(|m| group.contains(&name(&area(m)).as_str()))
    };
    let stale: Vec<_> = KNOWN
        .iter()
        .filter(|g| {
            let here = g.iter().all(|a| {
                let m: ModPath = a.split("::").map(str::to_owned).collect();
                krate.modules.contains_key(&m)
            });
            here && !found.iter().any(|c| known(c, g))
        })
        .collect();
    assert!(
        stale.is_empty(),
        "these known circles are gone, delete them from KNOWN: {stale:?}"
    );
    let found: Vec<_> = found
        .into_iter()
        .filter(|c| !KNOWN.iter().any(|g| known(c, g)))
        .collect();
    let shown: Vec<String> = found
        .iter()
        .map(|c| c.iter().map(name).collect::<Vec<_>>().join(" → "))
        .collect();
    assert!(
        found.is_empty(),
        "import circles in {dir}:\n  {}",
        shown.join("\n  ")
    );
}

#[test]
fn backend_modules_import_each_other_without_circles() {
    assert_acyclic("backend/src", &[]);
}

#[test]
fn server_modules_import_each_other_without_circles() {
    // `main.rs` is the binary's own crate root; it reaches the library only through `server::`.
    assert_acyclic("server/src", &["main.rs"]);
}

#[test]
fn the_checker_sees_a_circle() {
    let g: BTreeMap<ModPath, BTreeSet<ModPath>> = [
        (
            vec!["jobs".into()],
            [vec!["backtest".into(), "runs".into()]].into(),
        ),
        (
            vec!["backtest".into(), "runs".into()],
            [vec!["jobs".into()]].into(),
        ),
    ]
    .into();
    assert_eq!(cycles(&g).len(), 1);
    let paths = parse_tree("crate::{auth::AuthKeys, jobs::{JobQueue, store as s}, Ctx};");
    let flat: Vec<String> = paths.iter().map(|(p, _)| p.join("::")).collect();
    assert_eq!(
        flat,
        [
            "crate::auth::AuthKeys",
            "crate::jobs::JobQueue",
            "crate::jobs::store",
            "crate::Ctx"
        ]
    );
}
