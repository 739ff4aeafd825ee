//! `[hosts]`: host groups (a host string, a list, or a table of `hosts` and `groups`),
//! groups of groups resolved to hosts with cycles reported as a path, and host strings
//! (env placeholders only) parsed. Must not: resolve names or connect.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::cycle;
use super::host::{self, HostSpec};
use super::keys;
use super::load::{Value, Walker};
use crate::error::did_you_mean;

impl Walker<'_> {
    /// A host string from the file: env placeholders expanded, then parsed.
    pub(super) fn host(&mut self, text: &str, span: Range<usize>) -> Option<HostSpec> {
        let tpl = self.template(text, span.clone())?;
        let extra = tpl.value.names().next().is_some()
            || tpl.value.secrets().next().is_some()
            || tpl.value.dynamic_calls().next().is_some();
        if extra {
            self.error(
                span,
                format!("host string `{text}` may only use env(\"NAME\") placeholders"),
                Some("write the host's name, or take it from the environment with {{ env(\"NAME\") }}".into()),
            );
            return None;
        }
        if let Some((name, inner)) = tpl.value.unset_env().first() {
            let at = tpl.file_span(inner.clone());
            self.error(
                at,
                format!("environment variable `{name}` is not set"),
                Some(format!(
                    "set it (export {name}=...) or give a default: {{{{ env(\"{name}\", \"...\") }}}}"
                )),
            );
            return None;
        }
        let expanded = match tpl.value.render(&super::template::Context::new()) {
            Ok(s) => s,
            Err(e) => {
                self.error(tpl.file_span(e.span), e.message, e.help);
                return None;
            }
        };
        match host::parse(&expanded) {
            Ok(h) => Some(h),
            Err(msg) => {
                self.error(
                    span,
                    msg,
                    Some("host strings are host, user@host, user@host:port or [ipv6]:port".into()),
                );
                None
            }
        }
    }

    pub(super) fn groups(&mut self, t: &DeTable) -> Vec<(String, Vec<HostSpec>)> {
        let mut raws: Vec<RawGroup> = Vec::new();
        for (k, v) in t.iter() {
            let name = k.get_ref().to_string();
            self.printable_name(&name, k.span(), "host group name");
            if name == "local" {
                self.error(
                    k.span(),
                    "`local` is reserved for this machine and cannot name a host group",
                    Some("rename the group".into()),
                );
                continue;
            }
            raws.push(self.raw_group(name, k.span(), v));
        }
        let names: Vec<String> = raws.iter().map(|r| r.name.clone()).collect();
        let edges = self.group_edges(&raws, &names);
        if let Some(path) = cycle::find(&edges) {
            let text: Vec<&str> = path.iter().map(|&i| names[i].as_str()).collect();
            let (from, to) = (path[0], path[1]);
            let span = raws[from]
                .refs
                .iter()
                .find(|(g, _)| *g == names[to])
                .map(|(_, s)| s.clone())
                .unwrap_or(0..0);
            self.error(
                span,
                format!("host groups include each other: {}", text.join(" -> ")),
                Some("a group may include other groups, but not itself".into()),
            );
            return Vec::new();
        }
        let own_vars: Vec<(HostSpec, Vec<(String, toml::Value)>)> = raws
            .iter_mut()
            .flat_map(|r| std::mem::take(&mut r.host_vars))
            .collect();
        let hosts: Vec<&Vec<HostSpec>> = raws.iter().map(|r| &r.hosts).collect();
        let mut budget = MAX_EXPANDED;
        let mut groups = Vec::with_capacity(raws.len());
        for (i, name) in names.into_iter().enumerate() {
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            if !collect_hosts(i, &hosts, &edges, &mut seen, &mut out, &mut budget) {
                self.error(
                    raws[i].span.clone(),
                    format!("expanding the host groups takes more than {MAX_EXPANDED} steps (reached at group `{name}`)"),
                    Some("a host counts once for each group that includes it, directly or through other groups: use fewer or shallower `groups` lists".into()),
                );
                return Vec::new();
            }
            groups.push((name, out));
        }
        self.host_vars = merged_vars(&groups, &raws, own_vars);
        groups
    }

    /// One group as written: a host string, a list, or `{ hosts = [...], groups = [...] }`.
    fn raw_group(&mut self, name: String, span: Range<usize>, v: &Value) -> RawGroup {
        let mut raw = RawGroup {
            name,
            span,
            hosts: Vec::new(),
            refs: Vec::new(),
            vars: Vec::new(),
            host_vars: Vec::new(),
        };
        let host_list = match v.get_ref() {
            DeValue::String(_) | DeValue::Array(_) => Some(v),
            DeValue::Table(gt) => {
                self.unknown_keys(gt, &keys::names(keys::GROUP), "a host group table");
                if let Some(g) = gt.get("groups") {
                    raw.refs = self.string_list(g, "groups").unwrap_or_default();
                }
                if let Some(vt) = gt.get("vars").and_then(|v| self.table(v, "vars")) {
                    raw.vars = self.vars(vt);
                }
                gt.get("hosts")
            }
            _ => {
                self.type_error(
                    v,
                    &raw.name.clone(),
                    "a host string, a list of host strings, or { groups = [...], hosts = [...] }",
                );
                None
            }
        };
        if let Some(list) = host_list {
            self.group_hosts(list, &mut raw);
        }
        raw
    }

    /// A group's hosts: host strings, or `{ host = "...", vars = { ... } }` tables.
    fn group_hosts(&mut self, list: &Value, raw: &mut RawGroup) {
        let items: Vec<&Value> = match list.get_ref() {
            DeValue::Array(a) => a.iter().collect(),
            _ => vec![list],
        };
        for item in items {
            match item.get_ref() {
                DeValue::String(s) => {
                    if let Some(h) = self.host(s, item.span()) {
                        raw.hosts.push(h);
                    }
                }
                DeValue::Table(ht) => {
                    self.unknown_keys(ht, &["host", "vars"], "a host table");
                    let Some(hv) = ht.get("host") else {
                        self.error(
                            item.span(),
                            format!("a host of group `{}` has no `host`", raw.name),
                            Some("write { host = \"web-1\", vars = { ... } }".into()),
                        );
                        continue;
                    };
                    let Some(text) = self.string(hv, "host") else {
                        continue;
                    };
                    let Some(h) = self.host(&text, hv.span()) else {
                        continue;
                    };
                    if let Some(vt) = ht.get("vars").and_then(|v| self.table(v, "vars")) {
                        let vars = self.vars(vt);
                        raw.host_vars.push((h.clone(), vars));
                    }
                    raw.hosts.push(h);
                }
                _ => self.type_error(
                    item,
                    "hosts",
                    "a host string or a { host = ..., vars = { ... } } table",
                ),
            }
        }
    }

    /// For each group, the groups it includes; undefined ones are reported.
    fn group_edges(&mut self, raws: &[RawGroup], names: &[String]) -> Vec<Vec<usize>> {
        let index: HashMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let mut edges: Vec<Vec<usize>> = vec![Vec::new(); raws.len()];
        for (i, r) in raws.iter().enumerate() {
            for (g, span) in &r.refs {
                match index.get(g.as_str()) {
                    Some(&j) => edges[i].push(j),
                    None => {
                        let help = self.wants(span).then(|| {
                            did_you_mean(g, names.iter().map(String::as_str))
                                .unwrap_or_else(|| defined_groups(names))
                        });
                        self.error(
                            span.clone(),
                            format!("host group `{}` includes undefined group `{g}`", r.name),
                            help,
                        );
                    }
                }
            }
        }
        edges
    }
}

/// The most hosts all groups together may expand to (each group's hosts, its included
/// groups' hosts, and one for each group visited and each reference to a group): beyond
/// it the file is refused.
const MAX_EXPANDED: usize = 1_000_000;

/// A group as written: its own hosts and the groups it includes.
struct RawGroup {
    name: String,
    /// Span of the group's name.
    span: Range<usize>,
    hosts: Vec<HostSpec>,
    refs: Vec<(String, Range<usize>)>,
    /// The group's own `vars`.
    vars: Vec<(String, toml::Value)>,
    /// Hosts written as tables with `vars`.
    host_vars: Vec<(HostSpec, Vec<(String, toml::Value)>)>,
}

/// The variables of each host: every group's `vars` that holds it (directly or through
/// included groups), in file order, then the host's own.
fn merged_vars(
    groups: &[(String, Vec<HostSpec>)],
    raws: &[RawGroup],
    own: Vec<(HostSpec, Vec<(String, toml::Value)>)>,
) -> HashMap<String, Vec<(String, toml::Value)>> {
    let mut out: HashMap<String, Vec<(String, toml::Value)>> = HashMap::new();
    for ((_, hosts), raw) in groups.iter().zip(raws) {
        if raw.vars.is_empty() {
            continue;
        }
        for h in hosts {
            out.entry(h.label())
                .or_default()
                .extend(raw.vars.iter().cloned());
        }
    }
    for (h, vars) in own {
        out.entry(h.label()).or_default().extend(vars);
    }
    out
}

/// The hosts of group `i` and of the groups it includes (transitively), each once, in
/// order: its own hosts, then each included group's. Each group is visited once (a
/// group included twice, or by two of its groups, adds nothing new), without recursion,
/// so long chains and wide fans of groups cost time in proportion to their size. Each
/// group visited, each host and each reference to a group takes one from `budget`;
/// false when it runs out.
fn collect_hosts(
    i: usize,
    hosts: &[&Vec<HostSpec>],
    edges: &[Vec<usize>],
    seen: &mut HashSet<HostSpec>,
    out: &mut Vec<HostSpec>,
    budget: &mut usize,
) -> bool {
    let mut visited = HashSet::new();
    let mut stack = vec![i];
    while let Some(g) = stack.pop() {
        if !visited.insert(g) {
            continue;
        }
        let Some(left) = budget.checked_sub(1 + hosts[g].len() + edges[g].len()) else {
            return false;
        };
        *budget = left;
        for h in hosts[g].iter() {
            if seen.insert(h.clone()) {
                out.push(h.clone());
            }
        }
        stack.extend(edges[g].iter().rev());
    }
    true
}

pub(super) fn defined_groups(names: &[String]) -> String {
    if names.is_empty() {
        "no host groups are defined; add them under [hosts]".to_string()
    } else {
        format!("defined groups: {}", super::report::some_names(names))
    }
}
