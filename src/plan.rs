//! The DAG of a run: which tasks the named targets need (targets plus transitive deps,
//! each once), in an order that respects every edge, and the phases (tasks at equal
//! depth) used only for showing the plan. Built on petgraph. Must not: schedule or run.

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Dfs, Reversed};

use crate::config::Config;
use crate::error::{did_you_mean, Error};

#[derive(Debug, Clone)]
pub struct Plan {
    /// Selected task indices, in a topological order (deps first).
    pub tasks: Vec<usize>,
    /// For each selected task (same order as `tasks`), its phase (0 = no selected deps).
    pub phase: Vec<usize>,
    /// The tasks the user asked for, by name (an alias given is replaced by its task's).
    pub targets: Vec<String>,
}

/// Graph of all tasks: an edge dep -> task for each dependency.
pub fn graph(config: &Config) -> DiGraph<usize, ()> {
    graph_of(
        &config
            .tasks
            .iter()
            .map(|t| t.deps.clone())
            .collect::<Vec<_>>(),
    )
}

/// Graph from an adjacency list (node -> its deps): an edge dep -> node.
pub fn graph_of(deps: &[Vec<usize>]) -> DiGraph<usize, ()> {
    let mut g = DiGraph::with_capacity(deps.len(), deps.iter().map(Vec::len).sum());
    for i in 0..deps.len() {
        g.add_node(i);
    }
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            g.add_edge(NodeIndex::new(d), NodeIndex::new(i), ());
        }
    }
    g
}

/// Targets plus their transitive deps, in topological order, from an acyclic graph.
pub fn select_indices(g: &DiGraph<usize, ()>, targets: &[usize]) -> Vec<usize> {
    let mut keep = vec![false; g.node_count()];
    let rev = Reversed(g);
    for &t in targets {
        let mut dfs = Dfs::new(&rev, NodeIndex::new(t));
        while let Some(n) = dfs.next(&rev) {
            keep[n.index()] = true;
        }
    }
    stable_toposort(g)
        .into_iter()
        .filter(|&i| keep[i])
        .collect()
}

/// A topological order that, among tasks free to go, takes the one declared first, so
/// plans and summaries follow the file. (Kahn's algorithm with a min-heap.) Nodes on a
/// cycle, which validation rules out, are appended in index order.
pub fn stable_toposort(g: &DiGraph<usize, ()>) -> Vec<usize> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let n = g.node_count();
    let mut indegree: Vec<usize> = (0..n)
        .map(|i| {
            g.neighbors_directed(NodeIndex::new(i), petgraph::Direction::Incoming)
                .count()
        })
        .collect();
    let mut heap: BinaryHeap<Reverse<usize>> =
        (0..n).filter(|&i| indegree[i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(n);
    let mut placed = vec![false; n];
    while let Some(Reverse(i)) = heap.pop() {
        order.push(i);
        placed[i] = true;
        for m in g.neighbors_directed(NodeIndex::new(i), petgraph::Direction::Outgoing) {
            let j = m.index();
            indegree[j] -= 1;
            if indegree[j] == 0 {
                heap.push(Reverse(j));
            }
        }
    }
    order.extend((0..n).filter(|&i| !placed[i]));
    order
}

/// Resolve target names and build the plan. `names` empty is a usage error.
pub fn plan(config: &Config, names: &[String]) -> Result<Plan, Error> {
    let mut idx = Vec::new();
    for name in names {
        match config.task_index(name) {
            Some(i) => idx.push(i),
            None => {
                let help = did_you_mean(name, config.runnable_names()).unwrap_or_else(|| {
                    if config.tasks.is_empty() {
                        format!("{} defines no tasks", config.path.display())
                    } else {
                        "run `nexus list` to see the tasks".to_string()
                    }
                });
                return Err(Error::usage(format!("unknown task `{name}`")).with_help(help));
            }
        }
    }
    let g = graph(config);
    let tasks = select_indices(&g, &idx);
    let mut depth = vec![0usize; config.tasks.len()];
    for &t in &tasks {
        depth[t] = config.tasks[t]
            .deps
            .iter()
            .map(|&d| depth[d] + 1)
            .max()
            .unwrap_or(0);
    }
    let phase = tasks.iter().map(|&t| depth[t]).collect();
    // An alias names its task: history, counters and the resume offer see one name.
    let targets = idx.iter().map(|&i| config.tasks[i].name.clone()).collect();
    Ok(Plan {
        tasks,
        phase,
        targets,
    })
}
