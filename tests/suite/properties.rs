//! Property tests (quickcheck) for the plan and the scheduler.
//!
//! 1. Random DAGs run every task exactly once, each after all of its deps (read back from
//!    a log file the commands append to, not from nexus' own events).
//! 2. `config::cycle::find` agrees with petgraph's `is_cyclic_directed`, and the cycle it
//!    returns is a real one.
//! 3. `parallel_limit` is never exceeded, measured from `+`/`-` lines the commands log;
//!    and across all cases tasks did overlap (the scheduler is not secretly serial).
//! 4. Selecting targets plans exactly them plus their transitive deps, each once, in an
//!    order that respects every edge (pure), and runs exactly those (with processes).
//!
//! Generated DAGs are acyclic by construction (edges follow a random rank order) but
//! their file order is shuffled, so "file order" is not a valid answer to (1) or (4).

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use nexus::config::Config;
use nexus::plan::Plan;
use nexus::run::event::{Event, RunStatus, Stamped, TaskStatus};
use nexus::run::recorder::{Recorder, Render};
use nexus::run::scheduler::{execute, Ctx, Options, Outcome};
use nexus::run::RunInfo;
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

// ---------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------

/// A uniform number in `lo..=hi`.
fn between(g: &mut Gen, lo: usize, hi: usize) -> usize {
    let range: Vec<usize> = (lo..=hi).collect();
    *g.choose(&range).unwrap()
}

/// A random permutation of `0..n`.
fn permutation(g: &mut Gen, n: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = between(g, 0, i);
        p.swap(i, j);
    }
    p
}

/// A random DAG of `MIN..=MAX` tasks (node i is task `t{i}`, in file order i), each
/// node's deps in `deps[i]`, plus a parallel limit in 1..=4. Acyclic because an edge
/// i -> dep j only exists when rank[j] < rank[i] for a random ranking of the nodes.
#[derive(Clone, Debug)]
struct Dag<const MIN: usize, const MAX: usize> {
    deps: Vec<Vec<usize>>,
    limit: usize,
}

impl<const MIN: usize, const MAX: usize> Dag<MIN, MAX> {
    fn len(&self) -> usize {
        self.deps.len()
    }

    /// Drop node k: its edges go, higher indices move down by one. Stays acyclic.
    fn without_node(&self, k: usize) -> Self {
        let deps = self
            .deps
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != k)
            .map(|(_, ds)| {
                ds.iter()
                    .filter(|&&d| d != k)
                    .map(|&d| if d > k { d - 1 } else { d })
                    .collect()
            })
            .collect();
        Dag {
            deps,
            limit: self.limit,
        }
    }

    /// Drop the `j`th dep of node `i`. Stays acyclic.
    fn without_edge(&self, i: usize, j: usize) -> Self {
        let mut d = self.clone();
        d.deps[i].remove(j);
        d
    }

    /// Smaller DAGs, for shrinking a failure: fewer nodes, fewer edges, lower limit.
    fn smaller(&self) -> Vec<Self> {
        let mut out = Vec::new();
        if self.len() > MIN {
            out.extend((0..self.len()).rev().map(|k| self.without_node(k)));
        }
        for i in 0..self.len() {
            for j in 0..self.deps[i].len() {
                out.push(self.without_edge(i, j));
            }
        }
        if self.limit > 1 {
            out.push(Dag {
                deps: self.deps.clone(),
                limit: self.limit - 1,
            });
        }
        out
    }

    /// Every node reachable from `targets` through deps (the targets included).
    fn closure(&self, targets: &[usize]) -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<usize> = targets.to_vec();
        while let Some(n) = stack.pop() {
            if seen.insert(n) {
                stack.extend(self.deps[n].iter().copied());
            }
        }
        seen
    }

    /// Longest chain of deps below each node (0: no deps), computed by memoised DFS.
    fn depth(&self) -> Vec<usize> {
        fn go(deps: &[Vec<usize>], n: usize, memo: &mut [Option<usize>]) -> usize {
            if let Some(d) = memo[n] {
                return d;
            }
            let d = deps[n]
                .iter()
                .map(|&m| go(deps, m, memo) + 1)
                .max()
                .unwrap_or(0);
            memo[n] = Some(d);
            d
        }
        let mut memo = vec![None; self.len()];
        (0..self.len())
            .map(|n| go(&self.deps, n, &mut memo))
            .collect()
    }

    /// True when some node has no path to or from another one (two tasks could overlap).
    fn has_independent_pair(&self) -> bool {
        let reach: Vec<BTreeSet<usize>> = (0..self.len()).map(|i| self.closure(&[i])).collect();
        (0..self.len())
            .any(|a| (a + 1..self.len()).any(|b| !reach[a].contains(&b) && !reach[b].contains(&a)))
    }
}

impl<const MIN: usize, const MAX: usize> Arbitrary for Dag<MIN, MAX> {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = between(g, MIN, MAX);
        let rank = permutation(g, n);
        // Edge density per case: from none at all (all independent) to dense layers.
        let percent = *g.choose(&[0, 10, 25, 40, 60]).unwrap();
        let mut deps = vec![Vec::new(); n];
        for (i, ds) in deps.iter_mut().enumerate() {
            for j in 0..n {
                if rank[j] < rank[i] && between(g, 1, 100) <= percent {
                    ds.push(j);
                }
            }
            // Deps in random order, not sorted by index.
            let p = permutation(g, ds.len());
            *ds = p.iter().map(|&k| ds[k]).collect();
        }
        Dag {
            deps,
            limit: between(g, 1, 4),
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        Box::new(self.smaller().into_iter())
    }
}

/// A DAG and a non-empty list of targets (may name a task twice: each still runs once).
#[derive(Clone, Debug)]
struct Selection<const MIN: usize, const MAX: usize> {
    dag: Dag<MIN, MAX>,
    targets: Vec<usize>,
}

impl<const MIN: usize, const MAX: usize> Arbitrary for Selection<MIN, MAX> {
    fn arbitrary(g: &mut Gen) -> Self {
        let dag = Dag::<MIN, MAX>::arbitrary(g);
        let n = dag.len();
        let count = between(g, 1, n.min(4));
        let mut targets: Vec<usize> = permutation(g, n).into_iter().take(count).collect();
        if between(g, 1, 5) == 1 {
            let again = *g.choose(&targets).unwrap();
            targets.push(again);
        }
        Selection { dag, targets }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let mut out = Vec::new();
        if self.targets.len() > 1 {
            for i in 0..self.targets.len() {
                let mut s = self.clone();
                s.targets.remove(i);
                out.push(s);
            }
        }
        if self.dag.len() > MIN {
            for k in (0..self.dag.len()).rev() {
                let targets: Vec<usize> = self
                    .targets
                    .iter()
                    .filter(|&&t| t != k)
                    .map(|&t| if t > k { t - 1 } else { t })
                    .collect();
                if !targets.is_empty() {
                    out.push(Selection {
                        dag: self.dag.without_node(k),
                        targets,
                    });
                }
            }
        }
        for i in 0..self.dag.len() {
            for j in 0..self.dag.deps[i].len() {
                out.push(Selection {
                    dag: self.dag.without_edge(i, j),
                    targets: self.targets.clone(),
                });
            }
        }
        Box::new(out.into_iter())
    }
}

/// An arbitrary directed graph (node -> its deps): cycles, self-loops and repeated edges
/// allowed. Half of the cases are built as a DAG plus at most one back edge, so that both
/// acyclic graphs and "almost acyclic" graphs with one long cycle come up often.
#[derive(Clone, Debug)]
struct Digraph {
    adj: Vec<Vec<usize>>,
}

impl Arbitrary for Digraph {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = between(g, 0, 10);
        let mut adj = vec![Vec::new(); n];
        if n == 0 {
            return Digraph { adj };
        }
        if bool::arbitrary(g) {
            let edges = between(g, 0, 2 * n);
            for _ in 0..edges {
                let from = between(g, 0, n - 1);
                let to = between(g, 0, n - 1);
                adj[from].push(to);
            }
        } else {
            let rank = permutation(g, n);
            let percent = *g.choose(&[10, 30, 50]).unwrap();
            for (i, ds) in adj.iter_mut().enumerate() {
                for j in 0..n {
                    if rank[j] < rank[i] && between(g, 1, 100) <= percent {
                        ds.push(j);
                    }
                }
            }
            if bool::arbitrary(g) {
                let from = between(g, 0, n - 1);
                let to = between(g, 0, n - 1);
                adj[from].push(to);
            }
        }
        Digraph { adj }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let mut out = Vec::new();
        for i in 0..self.adj.len() {
            for j in 0..self.adj[i].len() {
                let mut s = self.clone();
                s.adj[i].remove(j);
                out.push(s);
            }
        }
        Box::new(out.into_iter())
    }
}

// ---------------------------------------------------------------------------------------
// A project on disk and a run of it
// ---------------------------------------------------------------------------------------

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "nexus-properties-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        // Commands are `sh` lines that single-quote this path.
        assert!(
            !dir.to_string_lossy().contains('\''),
            "temp dir has a quote"
        );
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn name(i: usize) -> String {
    format!("t{i}")
}

/// A TOML basic string holding `s`.
fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// What each task runs, given its name and the log path.
type CommandOf<'a> = &'a dyn Fn(&str, &str) -> String;

/// Write `deps` as a nexus.toml in `dir` (tasks t0, t1, ... in index order) and load it.
fn write_config(
    dir: &Path,
    deps: &[Vec<usize>],
    limit: usize,
    command: CommandOf,
) -> Result<Config, String> {
    let log = dir.join("log");
    let log = log.to_str().ok_or("temp path is not UTF-8")?;
    let mut text = format!("[config]\nparallel_limit = {limit}\n");
    for (i, ds) in deps.iter().enumerate() {
        let _ = write!(
            text,
            "\n[tasks.{}]\nrun = {}\n",
            name(i),
            toml_str(&command(&name(i), log))
        );
        if !ds.is_empty() {
            let list: Vec<String> = ds.iter().map(|&d| toml_str(&name(d))).collect();
            let _ = writeln!(text, "deps = [{}]", list.join(", "));
        }
    }
    let path = dir.join("nexus.toml");
    std::fs::write(&path, &text).map_err(|e| format!("write {}: {e}", path.display()))?;
    let config = nexus::config::load(&path)
        .map_err(|e| format!("load failed: {e}\n--- nexus.toml\n{text}"))?;
    // The model must be the graph we wrote: names in file order, deps as written.
    if config.tasks.len() != deps.len() {
        return Err(format!(
            "loaded {} tasks, wrote {}",
            config.tasks.len(),
            deps.len()
        ));
    }
    for (i, t) in config.tasks.iter().enumerate() {
        if t.name != name(i) || t.deps != deps[i] {
            return Err(format!(
                "task {i} loaded as {} with deps {:?}, written as {} with deps {:?}",
                t.name,
                t.deps,
                name(i),
                deps[i]
            ));
        }
    }
    Ok(config)
}

fn append_name(task: &str, log: &str) -> String {
    format!("echo {task} >> '{log}'")
}

fn plus_sleep_minus(task: &str, log: &str) -> String {
    format!("echo \"+ {task}\" >> '{log}'; sleep 0.02; echo \"- {task}\" >> '{log}'")
}

/// A renderer that keeps every event.
struct Collect(Arc<Mutex<Vec<Event>>>);

impl Render for Collect {
    fn event(&mut self, ev: &Stamped) {
        self.0.lock().unwrap().push(ev.event.clone());
    }
}

struct Ran {
    outcome: Outcome,
    events: Vec<Event>,
    /// Lines of the log file the commands appended to.
    log: Vec<String>,
}

/// Plan `targets`.
fn plan(config: &Config, targets: &[String]) -> Result<Plan, String> {
    nexus::plan::plan(config, targets).map_err(|e| format!("plan failed: {e}"))
}

/// Run `plan` with `limit`; read back the events and the log.
fn run(dir: &Path, config: Config, plan: &Plan, limit: usize) -> Result<Ran, String> {
    let opts = Options {
        parallel_limit: limit,
        max_connections: 256,
        continue_on_error: false,
        hosts_override: None,
        stdout_is_data: false,
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = Recorder::new(None, Box::new(Collect(Arc::clone(&seen))));
    let outcome = execute(Ctx {
        config: &config,
        plan,
        run: &RunInfo::new(dir),
        opts: &opts,
        recorder: &recorder,
    });
    drop(recorder);
    let events: Vec<Event> = std::mem::take(&mut *seen.lock().unwrap());
    let log = match std::fs::read_to_string(dir.join("log")) {
        Ok(s) => s.lines().map(str::to_string).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(format!("read log: {e}")),
    };
    Ok(Ran {
        outcome,
        events,
        log,
    })
}

/// The run succeeded, every planned task is reported once as a success, and every
/// task started once and finished once in the event stream.
fn check_success(plan: &Plan, config_names: &[String], ran: &Ran) -> Result<(), String> {
    let o = &ran.outcome;
    if o.exit_code != 0 || o.status != RunStatus::Success {
        return Err(format!(
            "run ended {:?} with exit code {}: {:?}",
            o.status, o.exit_code, o.tasks
        ));
    }
    let planned: Vec<&str> = plan
        .tasks
        .iter()
        .map(|&t| config_names[t].as_str())
        .collect();
    let reported: Vec<&str> = o.tasks.iter().map(|t| &*t.task).collect();
    if planned != reported {
        return Err(format!("outcome lists {reported:?}, plan is {planned:?}"));
    }
    if let Some(t) = o.tasks.iter().find(|t| t.status != TaskStatus::Success) {
        return Err(format!("task {} ended {:?}", t.task, t.status));
    }
    let mut starts: HashMap<&str, usize> = HashMap::new();
    let mut finishes: HashMap<&str, usize> = HashMap::new();
    for e in &ran.events {
        match e {
            Event::TaskStart { task, .. } => *starts.entry(task).or_default() += 1,
            Event::TaskFinish { task, .. } => *finishes.entry(task).or_default() += 1,
            _ => {}
        }
    }
    for n in &planned {
        let (s, f) = (starts.get(n), finishes.get(n));
        if s != Some(&1) || f != Some(&1) {
            return Err(format!(
                "task {n}: {s:?} task_start and {f:?} task_finish events"
            ));
        }
    }
    if starts.len() != planned.len() || finishes.len() != planned.len() {
        return Err(format!(
            "events for tasks outside the plan: {starts:?} {finishes:?}"
        ));
    }
    Ok(())
}

/// Run one case's checks; the test result names the case (quickcheck itself only names
/// cases it shrank), also when nexus panicked.
fn verdict(case: &dyn std::fmt::Debug, check: impl FnOnce() -> Result<(), String>) -> TestResult {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)).unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(format!("panicked: {msg}"))
    });
    match r {
        Ok(()) => TestResult::passed(),
        Err(msg) => TestResult::error(format!("{msg}\ncase: {case:?}")),
    }
}

// ---------------------------------------------------------------------------------------
// 1. Every task runs exactly once, after all of its deps
// ---------------------------------------------------------------------------------------

/// Position of each expected name in `log` (each exactly once, nothing else there).
fn positions(log: &[String], expected: &BTreeSet<usize>) -> Result<HashMap<usize, usize>, String> {
    let mut pos = HashMap::new();
    for (line_no, line) in log.iter().enumerate() {
        let idx = line
            .strip_prefix('t')
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|i| expected.contains(i))
            .ok_or_else(|| format!("unexpected log line {line:?}; log: {log:?}"))?;
        if pos.insert(idx, line_no).is_some() {
            return Err(format!("t{idx} ran twice; log: {log:?}"));
        }
    }
    if let Some(missing) = expected.iter().find(|i| !pos.contains_key(i)) {
        return Err(format!("t{missing} never ran; log: {log:?}"));
    }
    Ok(pos)
}

fn runs_in_dependency_order(dag: Dag<1, 12>) -> TestResult {
    let dir = TempDir::new();
    verdict(&dag, || {
        let config = write_config(dir.path(), &dag.deps, dag.limit, &append_name)?;
        let names: Vec<String> = config.tasks.iter().map(|t| t.name.clone()).collect();
        // Ask for every task, in reverse file order (order of targets must not matter).
        let targets: Vec<String> = names.iter().rev().cloned().collect();
        let plan = plan(&config, &targets)?;
        let ran = run(dir.path(), config, &plan, dag.limit)?;
        let all: BTreeSet<usize> = (0..dag.len()).collect();
        let pos = positions(&ran.log, &all)?;
        for (i, ds) in dag.deps.iter().enumerate() {
            for &d in ds {
                if pos[&d] > pos[&i] {
                    return Err(format!("t{i} ran before its dep t{d}; log: {:?}", ran.log));
                }
            }
        }
        // Then what nexus itself reports: success, each task started and finished once.
        check_success(&plan, &names, &ran)
    })
}

#[test]
fn random_dags_run_each_task_once_after_its_deps() {
    QuickCheck::new()
        .tests(40)
        .quickcheck(runs_in_dependency_order as fn(Dag<1, 12>) -> TestResult);
}

// ---------------------------------------------------------------------------------------
// 2. Cycle detection agrees with petgraph
// ---------------------------------------------------------------------------------------

static CYCLIC_CASES: AtomicUsize = AtomicUsize::new(0);
static ACYCLIC_CASES: AtomicUsize = AtomicUsize::new(0);

fn cycle_matches_petgraph(g: Digraph) -> TestResult {
    let adj = &g.adj;
    verdict(adj, || {
        let found = nexus::config::cycle::find(adj);
        let cyclic = petgraph::algo::is_cyclic_directed(&nexus::plan::graph_of(adj));
        if found.is_some() != cyclic {
            return Err(format!(
                "cycle::find says {found:?}, petgraph says cyclic = {cyclic}"
            ));
        }
        let Some(path) = found else {
            ACYCLIC_CASES.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        };
        CYCLIC_CASES.fetch_add(1, Ordering::Relaxed);
        if path.len() < 2 || path.first() != path.last() {
            return Err(format!("{path:?} is not a closed path"));
        }
        if let Some(bad) = path.iter().find(|&&v| v >= adj.len()) {
            return Err(format!("{path:?} names node {bad}, which does not exist"));
        }
        if let Some(w) = path.windows(2).find(|w| !adj[w[0]].contains(&w[1])) {
            return Err(format!("{path:?}: {} does not depend on {}", w[0], w[1]));
        }
        // Each node once (the message `a -> b -> c -> a` names the cycle, not a walk).
        let inner = &path[..path.len() - 1];
        if inner.iter().collect::<BTreeSet<_>>().len() != inner.len() {
            return Err(format!("{path:?} visits a node twice"));
        }
        Ok(())
    })
}

#[test]
fn cycle_detection_agrees_with_petgraph() {
    QuickCheck::new()
        .tests(1000)
        .quickcheck(cycle_matches_petgraph as fn(Digraph) -> TestResult);
    // Both answers must have come up, or the comparison proved little.
    let (c, a) = (
        CYCLIC_CASES.load(Ordering::Relaxed),
        ACYCLIC_CASES.load(Ordering::Relaxed),
    );
    eprintln!("{c} cyclic and {a} acyclic graphs");
    assert!(
        c >= 100 && a >= 100,
        "only {c} cyclic and {a} acyclic cases"
    );
}

// ---------------------------------------------------------------------------------------
// 3. parallel_limit is never exceeded, measured from the commands' own log
// ---------------------------------------------------------------------------------------

/// Cases where tasks were seen overlapping (more than one running at once).
static OVERLAPPED: AtomicUsize = AtomicUsize::new(0);
/// Cases where overlap was possible: limit >= 2 and two tasks without a path between them.
static COULD_OVERLAP: AtomicUsize = AtomicUsize::new(0);

/// Replay `+ NAME` / `- NAME` lines; the highest number running at once.
fn max_running(log: &[String], n: usize) -> Result<usize, String> {
    let mut state = vec![0u8; n]; // 0 not started, 1 running, 2 done
    let (mut running, mut max) = (0usize, 0usize);
    for line in log {
        let (sign, task) = line
            .split_once(' ')
            .ok_or_else(|| format!("bad log line {line:?}"))?;
        let i = task
            .strip_prefix('t')
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|&i| i < n)
            .ok_or_else(|| format!("bad log line {line:?}"))?;
        match (sign, state[i]) {
            ("+", 0) => {
                state[i] = 1;
                running += 1;
                max = max.max(running);
            }
            ("-", 1) => {
                state[i] = 2;
                running -= 1;
            }
            _ => return Err(format!("line {line:?} out of order; log: {log:?}")),
        }
    }
    if let Some(i) = state.iter().position(|&s| s != 2) {
        return Err(format!("t{i} did not start and finish once; log: {log:?}"));
    }
    Ok(max)
}

fn limit_is_respected(dag: Dag<4, 12>) -> TestResult {
    let dir = TempDir::new();
    verdict(&dag, || {
        let config = write_config(dir.path(), &dag.deps, dag.limit, &plus_sleep_minus)?;
        let names: Vec<String> = config.tasks.iter().map(|t| t.name.clone()).collect();
        let plan = plan(&config, &names)?;
        let ran = run(dir.path(), config, &plan, dag.limit)?;
        let max = max_running(&ran.log, dag.len())?;
        if max > dag.limit {
            return Err(format!(
                "{max} tasks ran at once with parallel_limit {}; log: {:?}",
                dag.limit, ran.log
            ));
        }
        // A dep ends before its dependent starts.
        let at = |line: String| ran.log.iter().position(|l| *l == line).unwrap();
        for (i, ds) in dag.deps.iter().enumerate() {
            for &d in ds {
                if at(format!("- t{d}")) > at(format!("+ t{i}")) {
                    return Err(format!(
                        "t{i} started before t{d} ended; log: {:?}",
                        ran.log
                    ));
                }
            }
        }
        if dag.limit >= 2 && dag.has_independent_pair() {
            COULD_OVERLAP.fetch_add(1, Ordering::Relaxed);
            if max >= 2 {
                OVERLAPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Then what nexus itself reports: success, each task started and finished once.
        check_success(&plan, &names, &ran)
    })
}

#[test]
fn parallel_limit_is_never_exceeded() {
    QuickCheck::new()
        .tests(20)
        .quickcheck(limit_is_respected as fn(Dag<4, 12>) -> TestResult);
    // Timing on a loaded machine is not exact per case, but if tasks never overlapped in
    // any case where they could, the scheduler is running them one at a time.
    let (could, did) = (
        COULD_OVERLAP.load(Ordering::Relaxed),
        OVERLAPPED.load(Ordering::Relaxed),
    );
    eprintln!("overlap seen in {did} of {could} cases where it was possible");
    if could > 0 {
        assert!(
            did > 0,
            "tasks never overlapped in {could} cases where they could"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 4. Targets select exactly themselves plus their transitive deps
// ---------------------------------------------------------------------------------------

fn check_plan(sel: &Selection<1, 15>, plan: &Plan, names: &[String]) -> Result<(), String> {
    let dag = &sel.dag;
    let expected = dag.closure(&sel.targets);
    let got: BTreeSet<usize> = plan.tasks.iter().copied().collect();
    if got.len() != plan.tasks.len() {
        return Err(format!("plan has duplicates: {:?}", plan.tasks));
    }
    if got != expected {
        return Err(format!("plan selects {got:?}, expected {expected:?}"));
    }
    let pos: HashMap<usize, usize> = plan
        .tasks
        .iter()
        .enumerate()
        .map(|(p, &t)| (t, p))
        .collect();
    for &t in &plan.tasks {
        for &d in &dag.deps[t] {
            if pos[&d] > pos[&t] {
                return Err(format!(
                    "plan {:?} puts t{t} before its dep t{d}",
                    plan.tasks
                ));
            }
        }
    }
    // Phase: longest chain of deps below the task (all of them are selected).
    let depth = dag.depth();
    let want: Vec<usize> = plan.tasks.iter().map(|&t| depth[t]).collect();
    if plan.phase != want {
        return Err(format!(
            "plan {:?} has phases {:?}, expected {want:?}",
            plan.tasks, plan.phase
        ));
    }
    let asked: Vec<String> = sel.targets.iter().map(|&t| names[t].clone()).collect();
    if plan.targets != asked {
        return Err(format!(
            "plan.targets {:?}, asked for {asked:?}",
            plan.targets
        ));
    }
    Ok(())
}

fn selection_is_closure(sel: Selection<1, 15>) -> TestResult {
    let dir = TempDir::new();
    verdict(&sel, || {
        // select_indices on the graph alone.
        let g = nexus::plan::graph_of(&sel.dag.deps);
        let picked = nexus::plan::select_indices(&g, &sel.targets);
        let expected = sel.dag.closure(&sel.targets);
        let set: BTreeSet<usize> = picked.iter().copied().collect();
        if set != expected || set.len() != picked.len() {
            return Err(format!(
                "select_indices gave {picked:?}, expected {expected:?}"
            ));
        }
        // The whole path: nexus.toml -> config -> plan.
        let config = write_config(dir.path(), &sel.dag.deps, sel.dag.limit, &append_name)?;
        let names: Vec<String> = config.tasks.iter().map(|t| t.name.clone()).collect();
        let targets: Vec<String> = sel.targets.iter().map(|&t| names[t].clone()).collect();
        let plan = plan(&config, &targets)?;
        check_plan(&sel, &plan, &names)
    })
}

#[test]
fn targets_select_their_transitive_deps() {
    QuickCheck::new()
        .tests(300)
        .quickcheck(selection_is_closure as fn(Selection<1, 15>) -> TestResult);
}

fn selection_runs_closure(sel: Selection<1, 15>) -> TestResult {
    let dir = TempDir::new();
    verdict(&sel, || {
        let config = write_config(dir.path(), &sel.dag.deps, sel.dag.limit, &append_name)?;
        let names: Vec<String> = config.tasks.iter().map(|t| t.name.clone()).collect();
        let targets: Vec<String> = sel.targets.iter().map(|&t| names[t].clone()).collect();
        let plan = plan(&config, &targets)?;
        check_plan(&sel, &plan, &names)?;
        let ran = run(dir.path(), config, &plan, sel.dag.limit)?;
        let pos = positions(&ran.log, &sel.dag.closure(&sel.targets))?;
        for (&t, &p) in &pos {
            for &d in &sel.dag.deps[t] {
                if pos[&d] > p {
                    return Err(format!("t{t} ran before its dep t{d}; log: {:?}", ran.log));
                }
            }
        }
        // Then what nexus itself reports: success, each task started and finished once.
        check_success(&plan, &names, &ran)
    })
}

#[test]
fn selected_targets_run_exactly_their_closure() {
    QuickCheck::new()
        .tests(20)
        .quickcheck(selection_runs_closure as fn(Selection<1, 15>) -> TestResult);
}
