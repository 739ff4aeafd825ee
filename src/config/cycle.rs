//! Cycle detection on an adjacency list (node -> the nodes it depends on), returning the
//! cycle as a path `a -> b -> ... -> a` for error messages. Kept separate so property
//! tests can compare it with petgraph's.

/// A cycle as node indices, first node repeated at the end; None for a DAG.
pub fn find(edges: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let n = edges.len();
    let mut mark = vec![Mark::New; n];
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for start in 0..n {
        if mark[start] != Mark::New {
            continue;
        }
        stack.push((start, 0));
        mark[start] = Mark::Active;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&dep) = edges[node].get(*next) {
                *next += 1;
                match mark.get(dep).copied() {
                    Some(Mark::New) => {
                        mark[dep] = Mark::Active;
                        stack.push((dep, 0));
                    }
                    Some(Mark::Active) => {
                        let from = stack.iter().position(|&(v, _)| v == dep).unwrap_or(0);
                        let mut path: Vec<usize> = stack[from..].iter().map(|&(v, _)| v).collect();
                        path.push(dep);
                        return Some(path);
                    }
                    _ => {}
                }
            } else {
                mark[node] = Mark::Done;
                stack.pop();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::find;

    #[test]
    fn finds_the_path() {
        assert_eq!(find(&[vec![1], vec![2], vec![0]]), Some(vec![0, 1, 2, 0]));
        assert_eq!(find(&[vec![1], vec![2], vec![]]), None);
        assert_eq!(find(&[vec![], vec![1]]), Some(vec![1, 1]));
    }
}
